"""The board's SQL. Like every statement in services/query/queries.py (whose filters it
reuses), each runs on a connection `access.scoped` has tied to the caller, so row-level
security decides which rows exist; counts count only what the caller may see."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.query.queries import OPEN_STATUSES, IncidentFilters, incident_where

# What a row of the board's list needs (the list never carries people, address or free text
# beyond the description).
LIST_COLUMNS = (
    "incident_id, classification, category, severity, status, ward_code, description, occurred_at, "
    "acknowledged_at, escalation_level, major_incident_declared, lead_incident_id, agencies_required, "
    "agencies_dispatched, source_agency"
)


# A row's alert chain: its lead, if the caller may see the lead (row-level security decides which
# rows the subquery finds), else the row itself. A report linked to a lead the caller may not see is
# a chain of its own: neither the lead's id nor which other reports share it is shown.
CHAIN = (
    "coalesce((select l.incident_id from incidents l where l.incident_id = incidents.lead_incident_id), "
    "incidents.incident_id)"
)


def _open_where(f: IncidentFilters, mode: str):
    """The filters, limited to this mode's reported incidents that are still open."""
    statuses = [s for s in f.statuses if s in OPEN_STATUSES] if f.statuses else OPEN_STATUSES
    where = incident_where(IncidentFilters(
        wards=f.wards, statuses=statuses or ["-"], categories=f.categories, agency=f.agency, mode=mode,
    ))
    where.add("reported")
    return where


async def chain_page(conn: asyncpg.Connection, f: IncidentFilters, mode: str, offset: int, limit: int) -> list:
    """One page of alert chains (a lead and the reports linked to it) among the open incidents
    matching the filters, in board order: escalated first, then not acknowledged, most severe,
    oldest. Each row also carries the number of chains and of incidents in all."""
    where = _open_where(f, mode)
    n = len(where.args)
    return await conn.fetch(
        f"with c as (select {CHAIN} as chain, max(escalation_level) as level, "
        "bool_or(status = 'open' and acknowledged_at is null) as unacknowledged, max(severity) as severity, "
        f"min(occurred_at) as since, count(*) as reports from incidents{where.sql()} group by 1) "
        "select *, count(*) over () as chains, sum(reports) over () as incidents from c "
        f"order by level desc, unacknowledged desc, severity desc nulls last, since, chain offset ${n + 1} limit ${n + 2}",
        *where.args, offset, limit,
    )


async def chain_members(conn: asyncpg.Connection, chains: list, f: IncidentFilters, mode: str) -> list:
    """The open incidents of these chains that match the filters, and each chain's lead, each with
    its `chain` (CHAIN)."""
    where = _open_where(f, mode)
    n = len(where.args)
    return await conn.fetch(
        f"select {LIST_COLUMNS}, {CHAIN} as chain from incidents{where.sql()} and {CHAIN} = any(${n + 1}::uuid[]) "
        f"union select {LIST_COLUMNS}, {CHAIN} as chain from incidents where incident_id = any(${n + 1}::uuid[])",
        *where.args, chains,
    )


async def open_by_ward(conn: asyncpg.Connection, mode: str) -> dict[str, int]:
    """Open incidents per ward (every ward filter off, so the map keeps its picture)."""
    where = _open_where(IncidentFilters(), mode)
    rows = await conn.fetch(f"select ward_code, count(*) as n from incidents{where.sql()} group by ward_code", *where.args)
    return {r["ward_code"]: r["n"] for r in rows if r["ward_code"]}


UNACKNOWLEDGED = "status = 'open' and acknowledged_at is null and mode = $1 and reported"


async def unacknowledged_counts(conn: asyncpg.Connection, mode: str, now: datetime, edges: list[int]) -> list:
    """Open incidents nobody has acknowledged: counts by severity and age bucket (minutes, lower edges)."""
    return await conn.fetch(
        "select severity, width_bucket(extract(epoch from ($2 - occurred_at)) / 60, $3::float8[]) as bucket, "
        f"count(*) as n from incidents where {UNACKNOWLEDGED} group by 1, 2",
        mode, now, [float(e) for e in edges],
    )


async def oldest_unacknowledged(conn: asyncpg.Connection, mode: str, limit: int) -> list:
    """The most severe, then longest-waiting, open incidents nobody has acknowledged."""
    return await conn.fetch(
        f"select {LIST_COLUMNS} from incidents where {UNACKNOWLEDGED} "
        "order by severity desc nulls last, occurred_at limit $2",
        mode, limit,
    )


async def hour_of_week(conn: asyncpg.Connection, mode: str, since: datetime, by: str) -> list:
    """Counts by (ward or category, ISO day of week, hour) in London time since `since`."""
    column = {"ward": "ward_code", "category": "category"}[by]
    return await conn.fetch(
        f"select {column} as key, extract(isodow from occurred_at at time zone 'Europe/London')::int as dow, "
        "extract(hour from occurred_at at time zone 'Europe/London')::int as hour, count(*) as n "
        "from incidents where mode = $1 and reported and occurred_at >= $2 group by 1, 2, 3",
        mode, since,
    )


async def tension_since(conn: asyncpg.Connection, mode: str, since: datetime) -> list:
    """Every ward's level changes since `since`, oldest first."""
    return await conn.fetch(
        "select ward_code, old_level, new_level, score, occurred_at, classification from ward_tension_history "
        "where mode = $1 and occurred_at >= $2 order by ward_code, occurred_at, event_id",
        mode, since,
    )
