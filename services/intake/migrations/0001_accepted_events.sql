-- The idempotency store: which event_ids intake has published, and where they landed.
-- Runs with search_path = intake (services/shared/migrations.py).
create table if not exists accepted_events (
    event_id    uuid primary key,
    incident_id uuid not null,
    event_type  text not null,
    topic       text not null,
    partition   integer not null,
    "offset"    bigint not null,
    accepted_at timestamptz not null default now()
);
