-- The tension calendar's planned events and silences, each its registering agency's: only that
-- agency, the control room and admins update or cancel it (services/intake/calendar.py). A row is
-- made when a registration (or silence) is checked, before it is published, so two callers racing
-- to register one id cannot both own it; `cancelled` is set when its cancellation is recorded.
-- A calendar fact's idempotency row is in accepted_events like an incident fact's, its
-- incident_id column holding the fact's key (its planned_event_id or silence_id).
-- Runs with search_path = intake (services/shared/migrations.py).
create table if not exists calendar_items (
    item_id    uuid primary key,           -- a planned_event_id or a silence_id
    kind       text not null,              -- planned_event | silence
    agency     text not null,              -- the registering caller's agency: its owner
    subject    text not null,              -- the registering caller (token subject)
    cancelled  boolean not null default false,
    created_at timestamptz not null default now()
);
