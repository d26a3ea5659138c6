-- Who sees what, in the database itself (docs/query.md). Added by the query room.
--
-- The query service connects as `muster_query`: not the owner of any table, SELECT only,
-- so PostgreSQL's row-level security applies to every row it reads. Each request sets, in
-- its own transaction, set_config('muster.role' | 'muster.agency' | 'muster.reason', ..., true);
-- a connection that set nothing sees nothing.
--
-- Tables are never schema-qualified here (the rebuild applies this file into a shadow
-- schema and swaps the tables in, with their grants, policies and triggers). Functions live
-- in the schema `muster_access`, which the rebuild never drops, so the triggers and
-- policies of swapped-in tables keep working; `create or replace` makes a repeat harmless.

do $$
begin
    create role muster_query login;
exception when duplicate_object or unique_violation then
    null;  -- the role is cluster-wide: another database (or a concurrent migration) made it
end
$$;

create schema if not exists muster_access;
grant usage on schema muster_access to muster_query;

-- Any role set at all: a connection without a principal sees nothing.
create or replace function muster_access.authenticated() returns boolean
language sql stable as $$
    select coalesce(current_setting('muster.role', true), '') <> ''
$$;

-- Cleared for OFFICIAL-SENSITIVE and restricted fields whatever the owning agency.
create or replace function muster_access.cleared() returns boolean
language sql stable as $$
    select coalesce(current_setting('muster.role', true), '') in ('safeguarding', 'admin')
$$;

-- The agencies that own an incident: the agency that reported it and every agency required.
create or replace function muster_access.owns(source_agency text, agencies_required text[]) returns boolean
language sql stable as $$
    select coalesce(current_setting('muster.agency', true), '') <> ''
       and (current_setting('muster.agency', true) = source_agency
            or current_setting('muster.agency', true) = any(coalesce(agencies_required, '{}')))
$$;

-- A row is visible when it is OFFICIAL, or when it is OFFICIAL-SENSITIVE, the caller is
-- cleared or owns it, and the caller stated a reason for this transaction.
create or replace function muster_access.may_see(classification text, source_agency text, agencies_required text[])
returns boolean
language sql stable as $$
    select muster_access.authenticated()
       and (classification is distinct from 'OFFICIAL-SENSITIVE'
            or (coalesce(btrim(current_setting('muster.reason', true)), '') <> ''
                and (muster_access.cleared() or muster_access.owns(source_agency, agencies_required))))
$$;

-- Restricted fields (people): only the cleared roles and the owning agencies.
create or replace function muster_access.may_see_people(source_agency text, agencies_required text[]) returns boolean
language sql stable as $$
    select muster_access.authenticated()
       and (muster_access.cleared() or muster_access.owns(source_agency, agencies_required))
$$;

-- Row-level security: the policies name muster_query only; the projector (the owner) is unaffected.
alter table incidents enable row level security;
create policy incidents_visible on incidents for select to muster_query
    using (muster_access.may_see(classification, source_agency, agencies_required));

alter table incident_events enable row level security;
create policy incident_events_visible on incident_events for select to muster_query
    using (exists (select 1 from incidents i where i.incident_id = incident_events.incident_id));

alter table escalations enable row level security;
create policy escalations_visible on escalations for select to muster_query
    using (exists (select 1 from incidents i where i.incident_id = escalations.incident_id));

alter table ward_tension enable row level security;
create policy ward_tension_visible on ward_tension for select to muster_query
    using (muster_access.authenticated());

alter table ward_tension_history enable row level security;
create policy ward_tension_history_visible on ward_tension_history for select to muster_query
    using (muster_access.may_see(classification, null, null));

-- Column privileges: restricted fields are not readable at all by the application role.
-- incidents.people only through muster_access.people_of(); a timeline payload only without
-- its "people" (payload_open), or whole through muster_access.payloads_of().
alter table incident_events add column payload_open jsonb generated always as (payload - 'people') stored;

grant select (
    incident_id, reported, category, severity, status, status_rank, status_at, ward_code, lat, lon, address,
    what3words, description, casualties, hazards, agencies_required, agencies_dispatched, agencies_on_scene,
    police_grading, classification, mode, lead_incident_id, reported_at, occurred_at, acknowledged_at,
    last_event_at, updated_at, version, escalation_level, major_incident_declared, source_kind, source_id,
    source_agency
) on incidents to muster_query;
grant select (
    event_id, incident_id, event_type, occurred_at, recorded_at, classification, mode, source_kind, source_id,
    source_agency, payload_open
) on incident_events to muster_query;
grant select on escalations, ward_tension, ward_tension_history to muster_query;

-- Restricted fields for those cleared for them; null for everyone else (and for a hidden incident).
create or replace function muster_access.people_of(incident uuid) returns jsonb
language sql stable security definer set search_path = public, pg_temp as $$
    select i.people from incidents i
     where i.incident_id = incident
       and muster_access.may_see(i.classification, i.source_agency, i.agencies_required)
       and muster_access.may_see_people(i.source_agency, i.agencies_required)
$$;

create or replace function muster_access.payloads_of(incident uuid)
returns table (event_id uuid, payload jsonb)
language sql stable security definer set search_path = public, pg_temp as $$
    select e.event_id, e.payload from incidents i join incident_events e on e.incident_id = i.incident_id
     where i.incident_id = incident
       and muster_access.may_see(i.classification, i.source_agency, i.agencies_required)
       and muster_access.may_see_people(i.source_agency, i.agencies_required)
$$;

-- Whether a record the caller cannot see now would be visible with a stated reason (428, not 404).
create or replace function muster_access.needs_reason(incident uuid) returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
    select exists (
        select 1 from incidents i
         where i.incident_id = incident
           and i.classification = 'OFFICIAL-SENSITIVE'
           and muster_access.authenticated()
           and (muster_access.cleared() or muster_access.owns(i.source_agency, i.agencies_required)))
$$;

revoke all on function muster_access.people_of(uuid), muster_access.payloads_of(uuid),
    muster_access.needs_reason(uuid) from public;
grant execute on function muster_access.people_of(uuid), muster_access.payloads_of(uuid),
    muster_access.needs_reason(uuid) to muster_query;

-- The audit of sensitive reads: the application may INSERT, never UPDATE, DELETE or TRUNCATE.
create table access_audit (
    audit_id       bigint      generated always as identity primary key,
    at             timestamptz not null default clock_timestamp(),
    subject        text        not null,
    role           text        not null,
    agency         text        not null,
    record_kind    text        not null,                           -- incident
    record_id      text        not null,
    classification text        not null,
    endpoint       text        not null,                           -- route template, e.g. /v1/incidents/{incident_id}
    reason         text        not null check (btrim(reason) <> '')
);
create index access_audit_record_idx on access_audit (record_id, at);

grant insert on access_audit to muster_query;

create or replace function muster_access.append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'access_audit is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;

create trigger access_audit_no_change before update or delete on access_audit
    for each row execute function muster_access.append_only();
create trigger access_audit_no_truncate before truncate on access_audit
    for each statement execute function muster_access.append_only();

-- Change notifications for the query service's stream (channel muster_changes). The payload
-- names a table and a key only; the stream reads the row back under the reader's own
-- visibility. The rebuild's shadow tables notify nothing until they are swapped in.
create or replace function muster_access.notify_change() returns trigger
language plpgsql as $$
declare
    key text;
begin
    if tg_table_schema <> 'public' then
        return null;
    end if;
    if tg_table_name = 'ward_tension' then
        key := new.ward_code || ' ' || new.mode;
    else
        key := new.incident_id::text;
    end if;
    perform pg_notify('muster_changes', tg_table_name || ' ' || key);
    return null;
end
$$;

create trigger incidents_notify after insert or update on incidents
    for each row execute function muster_access.notify_change();
create trigger escalations_notify after insert or update on escalations
    for each row execute function muster_access.notify_change();
create trigger ward_tension_notify after insert or update on ward_tension
    for each row execute function muster_access.notify_change();
