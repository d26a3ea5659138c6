-- Casework (docs/casework.md): ASB cases per complainant and the premises ledger per UPRN.
--
-- `casework_cases` keeps the latest picture of each case (CaseworkCaseChanged, newest by
-- as_of then the case's version); `casework_alerts` every threshold met, re-route and clock
-- warning once by event_id. Both are OFFICIAL-SENSITIVE by nature: the query role sees a
-- case only with a stated reason, and only when cleared (safeguarding, admin), or working
-- casework for the council or the police, or for the housing provider whose tenant it
-- concerns (muster.org, from the token's `org` claim).

create table if not exists casework_cases (
    case_id uuid primary key,
    kind text not null check (kind in ('asb', 'premises')),
    mode text not null,
    classification text not null,
    complainant_key text,
    uprn text,
    route text not null,
    status text not null,
    counted integer not null,
    threshold integer,
    entries jsonb not null,
    clocks jsonb not null,
    agencies text[] not null default '{}',
    housing_providers text[] not null default '{}',
    next_due_at timestamptz,
    as_of timestamptz not null,
    version bigint not null,
    event_id uuid not null
);
create index if not exists casework_cases_board_idx on casework_cases (mode, status, next_due_at);
create index if not exists casework_cases_uprn_idx on casework_cases (uprn) where uprn is not null;

create table if not exists casework_alerts (
    event_id uuid primary key,
    case_id uuid not null,
    event_type text not null,
    mode text not null,
    classification text not null,
    occurred_at timestamptz not null,
    payload jsonb not null
);
create index if not exists casework_alerts_case_idx on casework_alerts (case_id, occurred_at);

create or replace function muster_access.may_see_case(housing_providers text[]) returns boolean
language sql stable as $$
    select muster_access.authenticated()
       and coalesce(btrim(current_setting('muster.reason', true)), '') <> ''
       and (muster_access.cleared()
            or (current_setting('muster.role', true) in ('control_room', 'enforcement_officer', 'analyst')
                and (current_setting('muster.agency', true) in ('council', 'police')
                     or (current_setting('muster.agency', true) = 'housing'
                         and coalesce(current_setting('muster.org', true), '') <> ''
                         and current_setting('muster.org', true) = any(coalesce(housing_providers, '{}'))))))
$$;

alter table casework_cases enable row level security;
drop policy if exists casework_cases_visible on casework_cases;
create policy casework_cases_visible on casework_cases for select to muster_query
    using (muster_access.may_see_case(housing_providers));

alter table casework_alerts enable row level security;
drop policy if exists casework_alerts_visible on casework_alerts;
create policy casework_alerts_visible on casework_alerts for select to muster_query
    using (exists (select 1 from casework_cases c where c.case_id = casework_alerts.case_id));

grant select on casework_cases, casework_alerts to muster_query;

-- A report's complainant_key is restricted like its people: the timeline payload the query
-- role reads leaves both out (the whole payload stays behind muster_access.payloads_of()).
alter table incident_events drop column if exists payload_open;
alter table incident_events add column payload_open jsonb
    generated always as (payload - 'people' - 'complainant_key') stored;
grant select (payload_open) on incident_events to muster_query;

-- The projector writes casework without owning it (0004_service_roles.sql).
grant select, insert, update, delete on casework_cases, casework_alerts to muster_projector;

do $admin$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        execute 'alter table casework_cases owner to muster_owner';
        execute 'alter table casework_alerts owner to muster_owner';
        execute 'alter function muster_access.may_see_case(text[]) owner to muster_owner';
    end if;
end
$admin$;
