-- Idempotency scoped to the caller and the payload: a replay must come from the same token
-- subject with the same payload (rows from before this migration have neither: null).
alter table accepted_events add column if not exists subject text;
alter table accepted_events add column if not exists digest bytea;

-- The incident registry: what intake has accepted about each incident (services/intake/registry.py).
-- Written in the same transaction as the idempotency record of the fact that changed it.
create table if not exists incidents (
    incident_id       uuid primary key,
    reporter          text not null,
    reporting_agency  text not null,
    source_kind       text not null,
    source_id         text not null,
    agencies_required text[] not null default '{}',
    mode              text not null,
    classification    text not null,
    terminal          boolean not null default false,
    lead_incident_id  uuid,
    reported_event_id uuid not null,
    reported_at       timestamptz not null default now(),
    updated_at        timestamptz not null default now()
);
