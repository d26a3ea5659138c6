-- The tension calendar (topic tension.calendar): planned events and operator silences, kept
-- as facts, once per event_id: who registered or silenced what, when, why and until when.
-- The board shows the silences in force; nothing here is ever updated or deleted.
create table tension_calendar (
    event_id        uuid        primary key,
    event_type      text        not null,
    subject_id      uuid        not null,   -- planned_event_id or silence_id
    occurred_at     timestamptz not null,
    recorded_at     timestamptz not null,
    classification  text        not null,
    mode            text        not null,
    source_kind     text        not null,
    source_id       text        not null,
    ward_codes      text[]      not null default '{}',
    category        text,
    starts_at       timestamptz,
    until           timestamptz,           -- a silence's end, a planned event's end
    reason          text,
    payload         jsonb       not null,
    topic           text        not null,
    "partition"     int         not null,
    "offset"        bigint      not null
);
create index tension_calendar_until_idx on tension_calendar (event_type, until);
create index tension_calendar_subject_idx on tension_calendar (subject_id, occurred_at);

alter table tension_calendar enable row level security;
create policy tension_calendar_visible on tension_calendar for select to muster_query
    using (muster_access.may_see(classification, null, null));
grant select on tension_calendar to muster_query;

-- The roles of 0004_service_roles: the projector writes it without owning it.
grant select, insert on tension_calendar to muster_projector;
do $admin$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        execute 'alter table tension_calendar owner to muster_owner';
    end if;
end
$admin$;
