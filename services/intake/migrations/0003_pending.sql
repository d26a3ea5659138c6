-- Events being published: claimed before intake hands them to the broker, gone once their
-- idempotency row is written (the same transaction). A retry that finds one whose publisher
-- died (kill -9 between the broker's acknowledgement and the idempotency row) looks for it on
-- the topic instead of publishing a second copy (docs/intake.md, "Crash between publish and record").
-- Runs with search_path = intake (services/shared/migrations.py).
create table if not exists pending_events (
    event_id uuid primary key,
    subject  text,                             -- who sent it (token subject)
    digest   bytea,                            -- of the request payload
    owner    uuid not null,                    -- the intake process publishing it
    since    timestamptz not null default now()
);
