-- The status store, written only by the projector. Documented in docs/projector.md.
-- Never schema-qualify a name here: `muster projector rebuild` applies these migrations
-- into a shadow schema (through search_path) and swaps the tables in.

-- Current state of every incident: one row per incident_id, a fold of its facts.
create table incidents (
    incident_id             uuid primary key,
    reported                boolean     not null default false,  -- false: a placeholder made by facts that arrived before the report
    category                text,
    severity                smallint,
    status                  text        not null default 'open',
    status_rank             smallint    not null default 0,       -- IncidentStatus.rank of status; never decreases
    status_at               timestamptz,                          -- occurred_at of the fact that set status
    ward_code               text,
    lat                     double precision,
    lon                     double precision,
    address                 text,
    what3words              text,
    description             text,
    casualties              jsonb,                                -- {"fatalities", "serious", "minor", "uninjured_involved"}
    hazards                 text[]      not null default '{}',
    agencies_required       text[]      not null default '{}',
    agencies_dispatched     text[]      not null default '{}',
    agencies_on_scene       text[]      not null default '{}',
    police_grading          text,
    classification          text        not null default 'OFFICIAL',
    mode                    text        not null,
    lead_incident_id        uuid,                                 -- set when this report is a duplicate merged into a lead
    reported_at             timestamptz,                          -- recorded_at of the IncidentReported
    occurred_at             timestamptz not null,                 -- occurred_at of the report (of the first fact for a placeholder)
    acknowledged_at         timestamptz,
    last_event_at           timestamptz not null,                 -- latest occurred_at among its facts
    updated_at              timestamptz not null,                 -- latest recorded_at among its facts
    version                 integer     not null default 0,       -- number of facts applied (timeline entries)
    people                  jsonb       not null default '[]',    -- RESTRICTED: victims, subjects, witnesses
    escalation_level        smallint    not null default 0,       -- highest escalation level raised (0: none)
    major_incident_declared boolean     not null default false,
    source_kind             text,
    source_id               text,
    source_agency           text
);

create index incidents_ward_idx            on incidents (ward_code, occurred_at desc);
create index incidents_status_idx          on incidents (status, occurred_at desc);
create index incidents_category_idx        on incidents (category, occurred_at desc);
create index incidents_severity_idx        on incidents (severity, occurred_at desc);
create index incidents_mode_idx            on incidents (mode, occurred_at desc);
create index incidents_keyset_idx          on incidents (occurred_at, incident_id);
create index incidents_lead_idx            on incidents (lead_incident_id) where lead_incident_id is not null;
create index incidents_agencies_idx        on incidents using gin (agencies_required);
create index incidents_dispatched_idx      on incidents using gin (agencies_dispatched);
create index incidents_source_agency_idx   on incidents (source_agency, occurred_at desc);
create index incidents_escalated_idx       on incidents (escalation_level, occurred_at desc) where escalation_level > 0;

-- The append-only timeline: every fact about an incident (escalations too), once.
create table incident_events (
    event_id        uuid        primary key,
    incident_id     uuid        not null,
    event_type      text        not null,
    occurred_at     timestamptz not null,
    recorded_at     timestamptz not null,
    classification  text        not null,
    mode            text        not null,
    source_kind     text        not null,
    source_id       text        not null,
    source_agency   text,
    payload         jsonb       not null,                          -- the whole event as published (may hold restricted fields)
    topic           text        not null,
    partition       integer     not null,
    "offset"        bigint      not null
);

create index incident_events_timeline_idx on incident_events (incident_id, occurred_at, event_id);
create index incident_events_occurred_idx on incident_events (occurred_at);
create index incident_events_type_idx     on incident_events (event_type, occurred_at);

-- Escalations: one row per (incident, level), raised and possibly stood down.
create table escalations (
    incident_id        uuid        not null,
    level              smallint    not null,
    level_name         text,
    agencies           text[]      not null default '{}',
    rule_id            text,
    rule_set_version   text,
    reason             text,
    category           text,
    severity           smallint,
    ward_code          text,
    methane            jsonb,
    cap_xml            text,
    classification     text        not null,
    mode               text        not null,
    raised_event_id    uuid,
    raised_at          timestamptz,                                -- occurred_at of EscalationRaised
    stood_down_event_id uuid,
    stood_down_at      timestamptz,                                -- occurred_at of EscalationStoodDown
    stood_down_reason  text,
    final_status       text,
    primary key (incident_id, level)
);

create index escalations_raised_idx on escalations (raised_at desc);
create index escalations_ward_idx   on escalations (ward_code, raised_at desc);
create index escalations_open_idx   on escalations (level, raised_at desc) where stood_down_at is null;

-- Ward tension now: one row per (ward, mode), the latest level change.
create table ward_tension (
    ward_code     text        not null,
    mode          text        not null,
    ward_name     text        not null,
    level         text        not null,
    previous_level text       not null,
    score         double precision not null,
    observed      double precision not null,
    expected      double precision not null,
    "window"      text        not null,
    window_start  timestamptz not null,
    window_end    timestamptz not null,
    changed_at    timestamptz not null,                            -- occurred_at of the TensionLevelChanged
    event_id      uuid        not null,
    primary key (ward_code, mode)
);

-- Every tension level change, once.
create table ward_tension_history (
    event_id          uuid        primary key,
    ward_code         text        not null,
    ward_name         text        not null,
    mode              text        not null,
    classification    text        not null,
    old_level         text        not null,
    new_level         text        not null,
    score             double precision not null,
    observed          double precision not null,
    expected          double precision not null,
    "window"          text        not null,
    window_start      timestamptz not null,
    window_end        timestamptz not null,
    occurred_at       timestamptz not null,
    recorded_at       timestamptz not null,
    top_contributors  jsonb       not null default '[]'
);

create index ward_tension_history_ward_idx on ward_tension_history (ward_code, occurred_at desc);
create index ward_tension_history_time_idx on ward_tension_history (occurred_at);

-- Where the projector is: written in the same transaction as the rows those records made.
create table projector_offsets (
    consumer_group text    not null,
    topic          text    not null,
    partition      integer not null,
    next_offset    bigint  not null,                               -- the next record to read
    primary key (consumer_group, topic, partition)
);
