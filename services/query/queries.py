"""Every SQL statement of the query service. Each runs on a connection that `access.scoped`
has tied to the caller, so row-level security decides which rows exist for it.

The application role cannot read `incidents.people` or `incident_events.payload` at all:
restricted fields come only through the muster_access functions, which check clearance.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import orjson

from services.query.pagination import Cursor
from services.shared.events import TERMINAL_STATUSES, IncidentStatus

INCIDENT_COLUMNS = (
    "incident_id, classification, mode, reported, category, severity, status, ward_code, lat, lon, address, "
    "what3words, description, casualties, hazards, agencies_required, agencies_dispatched, agencies_on_scene, "
    "police_grading, lead_incident_id, occurred_at, reported_at, acknowledged_at, last_event_at, updated_at, "
    "escalation_level, major_incident_declared, version, source_kind, source_id, source_agency"
)
ESCALATION_COLUMNS = (
    "incident_id, level, level_name, agencies, rule_id, reason, category, severity, ward_code, classification, "
    "mode, raised_at, stood_down_at, stood_down_reason, final_status, methane"
)
TENSION_NOW_COLUMNS = (
    'ward_code, mode, level, previous_level, score, observed, expected, "window", window_start, window_end, changed_at'
)
TENSION_CHANGE_COLUMNS = (
    'event_id, ward_code, ward_name, classification, old_level, new_level, score, observed, expected, "window", '
    "window_start, window_end, occurred_at, top_contributors"
)
OPEN_STATUSES = sorted(s.value for s in IncidentStatus if s not in TERMINAL_STATUSES)


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb as Python objects on every pooled connection."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads
    )


@dataclass(frozen=True)
class IncidentFilters:
    wards: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    severity_min: int | None = None
    severity_max: int | None = None
    agency: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    mode: str | None = None


class _Where:
    """WHERE clauses with numbered parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[object] = []

    def add(self, template: str, *values: object) -> None:
        numbers = [f"${len(self.args) + i + 1}" for i in range(len(values))]
        self.clauses.append(template.format(*numbers))
        self.args.extend(values)

    def one_of(self, column: str, values: list[str]) -> None:
        """`column = $n` for one value (the planner can then walk that column's index in order), any() for more."""
        if len(values) == 1:
            self.add(f"{column} = {{}}", values[0])
        elif values:
            self.add(f"{column} = any({{}}::text[])", values)

    def sql(self) -> str:
        return (" where " + " and ".join(self.clauses)) if self.clauses else ""


def incident_where(f: IncidentFilters) -> _Where:
    where = _Where()
    where.one_of("ward_code", f.wards)
    where.one_of("status", f.statuses)
    where.one_of("category", f.categories)
    if f.severity_min is not None:
        where.add("severity >= {}", f.severity_min)
    if f.severity_max is not None:
        where.add("severity <= {}", f.severity_max)
    if f.agency:
        where.add("({0} = source_agency or {0} = any(agencies_required) or {0} = any(agencies_dispatched))", f.agency)
    if f.occurred_from is not None:
        where.add("occurred_at >= {}", f.occurred_from)
    if f.occurred_to is not None:
        where.add("occurred_at < {}", f.occurred_to)
    if f.mode:
        where.add("mode = {}", f.mode)
    return where


async def list_incidents(conn: asyncpg.Connection, f: IncidentFilters, cursor: Cursor | None, limit: int) -> list:
    """Newest first; `limit + 1` rows so the caller knows whether a next page exists."""
    where = incident_where(f)
    if cursor is not None:
        where.add("(occurred_at, incident_id) < ({}, {})", cursor.occurred_at, cursor.incident_id)
    where.args.append(limit + 1)
    sql = (
        f"select {INCIDENT_COLUMNS} from incidents{where.sql()} "
        f"order by occurred_at desc, incident_id desc limit ${len(where.args)}"
    )
    return await conn.fetch(sql, *where.args)


async def incident(conn: asyncpg.Connection, incident_id: uuid.UUID):
    return await conn.fetchrow(f"select {INCIDENT_COLUMNS} from incidents where incident_id = $1", incident_id)


async def timeline(conn: asyncpg.Connection, incident_id: uuid.UUID) -> list:
    return await conn.fetch(
        "select event_id, event_type, occurred_at, recorded_at, classification, mode, source_kind, source_id, "
        "source_agency, payload_open as payload from incident_events where incident_id = $1 "
        "order by occurred_at, event_id",
        incident_id,
    )


async def full_payloads(conn: asyncpg.Connection, incident_id: uuid.UUID) -> dict[uuid.UUID, dict]:
    """Whole payloads (restricted fields included) when the database agrees the caller is cleared."""
    rows = await conn.fetch("select event_id, payload from muster_access.payloads_of($1)", incident_id)
    return {r["event_id"]: r["payload"] for r in rows}


async def people(conn: asyncpg.Connection, incident_id: uuid.UUID):
    return await conn.fetchval("select muster_access.people_of($1)", incident_id)


async def needs_reason(conn: asyncpg.Connection, incident_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("select muster_access.needs_reason($1)", incident_id))


async def escalations_of(conn: asyncpg.Connection, incident_id: uuid.UUID) -> list:
    return await conn.fetch(
        f"select {ESCALATION_COLUMNS} from escalations where incident_id = $1 order by level", incident_id
    )


async def linked(conn: asyncpg.Connection, incident_id: uuid.UUID, lead_id: uuid.UUID | None) -> list:
    return await conn.fetch(
        f"select {INCIDENT_COLUMNS} from incidents where lead_incident_id = $1 "
        "or (incident_id = $2 and $2 is not null) order by occurred_at, incident_id",
        incident_id, lead_id,
    )


async def list_escalations(
    conn: asyncpg.Connection, *, open_only: bool, ward: str | None, mode: str | None, limit: int
) -> list:
    where = _Where()
    if open_only:
        where.add("stood_down_at is null and raised_at is not null")
    if ward:
        where.add("ward_code = {}", ward)
    if mode:
        where.add("mode = {}", mode)
    where.args.append(limit)
    return await conn.fetch(
        f"select {ESCALATION_COLUMNS} from escalations{where.sql()} "
        f"order by raised_at desc nulls last, incident_id, level limit ${len(where.args)}",
        *where.args,
    )


async def tension_now(conn: asyncpg.Connection, mode: str) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(f"select {TENSION_NOW_COLUMNS} from ward_tension where mode = $1", mode)
    return {r["ward_code"]: r for r in rows}


async def tension_history(conn: asyncpg.Connection, ward_code: str, mode: str, limit: int) -> list:
    return await conn.fetch(
        f"select {TENSION_CHANGE_COLUMNS} from ward_tension_history where ward_code = $1 and mode = $2 "
        "order by occurred_at desc, event_id desc limit $3",
        ward_code, mode, limit,
    )


async def levels_before(conn: asyncpg.Connection, mode: str, before: datetime) -> dict[str, str]:
    rows = await conn.fetch(
        "select distinct on (ward_code) ward_code, new_level from ward_tension_history "
        "where mode = $1 and occurred_at < $2 order by ward_code, occurred_at desc, event_id desc",
        mode, before,
    )
    return {r["ward_code"]: r["new_level"] for r in rows}


async def changes_between(conn: asyncpg.Connection, mode: str, start: datetime, end: datetime) -> list:
    return await conn.fetch(
        f"select {TENSION_CHANGE_COLUMNS} from ward_tension_history "
        "where mode = $1 and occurred_at >= $2 and occurred_at < $3",
        mode, start, end,
    )


CALENDAR_COLUMNS = (
    "event_id, event_type, subject_id, occurred_at, classification, mode, source_kind, source_id, ward_codes, "
    "category, starts_at, until, reason, payload"
)


async def silences_in_force(conn: asyncpg.Connection, mode: str, now: datetime) -> list:
    """The operators' silences in force at `now`, soonest to end first."""
    return await conn.fetch(
        f"select {CALENDAR_COLUMNS} from tension_calendar where event_type = 'TensionSilenced' and mode = $1 "
        "and occurred_at <= $2 and until > $2 order by until, event_id",
        mode, now,
    )


async def planned_events(conn: asyncpg.Connection, mode: str, now: datetime) -> list:
    """Each planned event's latest registration or cancellation, for those not over by `now`."""
    return await conn.fetch(
        f"select * from (select distinct on (subject_id) {CALENDAR_COLUMNS} from tension_calendar "
        "where mode = $1 and event_type in ('PlannedEventRegistered', 'PlannedEventCancelled') "
        "order by subject_id, occurred_at desc, event_id desc) latest "
        "where event_type = 'PlannedEventRegistered' and until > $2 order by starts_at, subject_id",
        mode, now,
    )


async def stats(conn: asyncpg.Connection, f: IncidentFilters) -> list:
    """One scan, grouped by ward, by category, by (ISO day of week, hour) in London time, and in all."""
    where = incident_where(f)
    return await conn.fetch(
        "select grouping(ward_code) as g_ward, grouping(category) as g_category, grouping(dow, hour) as g_hour, "
        "ward_code, category, dow, hour, count(*) as n from ("
        "  select ward_code, category,"
        "         extract(isodow from occurred_at at time zone 'Europe/London')::int as dow,"
        "         extract(hour from occurred_at at time zone 'Europe/London')::int as hour"
        f"  from incidents{where.sql()}) s "
        "group by grouping sets ((ward_code), (category), (dow, hour), ())",
        *where.args,
    )


async def open_incidents(conn: asyncpg.Connection, mode: str, limit: int) -> list:
    """The board's list: open incidents, most severe first, oldest first within a severity."""
    return await conn.fetch(
        f"select {INCIDENT_COLUMNS} from incidents where status = any($1::text[]) and mode = $2 and reported "
        "order by severity desc nulls last, occurred_at limit $3",
        OPEN_STATUSES, mode, limit,
    )


async def incidents_by_id(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list:
    return await conn.fetch(f"select {INCIDENT_COLUMNS} from incidents where incident_id = any($1::uuid[])", ids)


async def escalations_by_incident(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list:
    return await conn.fetch(
        f"select {ESCALATION_COLUMNS} from escalations where incident_id = any($1::uuid[])", ids
    )


async def tension_by_key(conn: asyncpg.Connection, keys: list[tuple[str, str]]) -> list:
    return await conn.fetch(
        f"select {TENSION_NOW_COLUMNS} from ward_tension "
        "where (ward_code, mode) in (select * from unnest($1::text[], $2::text[]))",
        [k[0] for k in keys], [k[1] for k in keys],
    )


async def audit(
    conn: asyncpg.Connection, *, subject: str, role: str, agency: str, records: list[tuple[str, str]],
    endpoint: str, reason: str,
) -> None:
    """One append-only row per sensitive record read: records are (incident_id, classification)."""
    if not records:
        return
    await conn.execute(
        "insert into access_audit (subject, role, agency, record_kind, record_id, classification, endpoint, reason) "
        "select $1, $2, $3, 'incident', r, c, $6, $7 from unnest($4::text[], $5::text[]) as u(r, c)",
        subject, role, agency, [r for r, _ in records], [c for _, c in records], endpoint, reason,
    )
