"""Every SQL statement of the projector. One batch is one transaction: the rows and the offsets.

Writes are set-based: the timeline rows not already stored go straight in by COPY; the
folded incident rows go through COPY into a temporary table, then one INSERT ... SELECT ...
ON CONFLICT. Only facts whose event_id was newly inserted into the timeline change state,
so a re-delivered record is a no-op. Incidents are folded per batch in Python (PostgreSQL cannot update a row twice in
one statement) under a row lock, so several projector instances never lose an update.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from services.projector import rules
from services.projector.handlers import TIMELINE_COLUMNS, Batch
from services.shared import events as ev
from services.shared.admission import Refusal, Reported, refusal

# Held shared by every batch transaction and exclusively by the rebuild while it swaps tables.
SWAP_LOCK = 0x6D75_7374_7377  # "mustsw"

_Q = lambda cols: ", ".join(f'"{c}"' for c in cols)  # noqa: E731 - quoted column lists

_INCIDENT_UPSERT = (
    f"insert into incidents ({_Q(rules.COLUMNS)}) select {_Q(rules.COLUMNS)} from tmp_incidents "
    "on conflict (incident_id) do update set "
    + ", ".join(f'"{c}" = excluded."{c}"' for c in rules.COLUMNS if c != "incident_id")
)

_ESCALATION_COLUMNS = (
    "incident_id", "level", "level_name", "agencies", "rule_id", "rule_set_version", "reason", "category",
    "severity", "ward_code", "methane", "cap_xml", "classification", "mode", "raised_event_id", "raised_at",
    "stood_down_event_id", "stood_down_at", "stood_down_reason", "final_status",
)
_RAISED = ("level_name", "agencies", "rule_id", "rule_set_version", "reason", "category", "severity", "ward_code",
           "methane", "cap_xml", "raised_event_id", "raised_at")
_STOOD_DOWN = ("stood_down_event_id", "stood_down_at", "stood_down_reason", "final_status")
_ESCALATION_UPSERT = (
    f"insert into escalations ({_Q(_ESCALATION_COLUMNS)}) values ({', '.join(f'${i + 1}' for i in range(len(_ESCALATION_COLUMNS)))}) "
    "on conflict (incident_id, level) do update set "
    + ", ".join(
        f"{c} = case when escalations.raised_event_id is null then excluded.{c} else escalations.{c} end" for c in _RAISED
    )
    + ", "
    + ", ".join(
        f"{c} = case when escalations.stood_down_event_id is null then excluded.{c} else escalations.{c} end"
        for c in _STOOD_DOWN
    )
    + ", classification = case when excluded.classification = 'OFFICIAL-SENSITIVE'"
    " then excluded.classification else escalations.classification end"
)

_TENSION_HISTORY_INSERT = """
insert into ward_tension_history (event_id, ward_code, ward_name, mode, classification, old_level, new_level, score,
    observed, expected, "window", window_start, window_end, occurred_at, recorded_at, top_contributors)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
on conflict (event_id) do nothing returning event_id
"""
_TENSION_NOW_UPSERT = """
insert into ward_tension (ward_code, mode, ward_name, level, previous_level, score, observed, expected, "window",
    window_start, window_end, changed_at, event_id)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
on conflict (ward_code, mode) do update set ward_name = excluded.ward_name, level = excluded.level,
    previous_level = excluded.previous_level, score = excluded.score, observed = excluded.observed,
    expected = excluded.expected, "window" = excluded."window", window_start = excluded.window_start,
    window_end = excluded.window_end, changed_at = excluded.changed_at, event_id = excluded.event_id
where (excluded.changed_at, excluded.event_id) > (ward_tension.changed_at, ward_tension.event_id)
"""
_CASE_COLUMNS = (
    "case_id", "kind", "mode", "classification", "complainant_key", "uprn", "route", "status", "counted", "threshold",
    "entries", "clocks", "agencies", "housing_providers", "next_due_at", "as_of", "version", "event_id",
)
_CASE_UPSERT = (
    f"insert into casework_cases ({_Q(_CASE_COLUMNS)}) "
    f"values ({', '.join(f'${i + 1}' for i in range(len(_CASE_COLUMNS)))}) "
    "on conflict (case_id) do update set "
    + ", ".join(f'"{c}" = excluded."{c}"' for c in _CASE_COLUMNS if c != "case_id")
    + " where (excluded.as_of, excluded.version) >= (casework_cases.as_of, casework_cases.version)"
)
_CASE_ALERT_INSERT = """
insert into casework_alerts (event_id, case_id, event_type, mode, classification, occurred_at, payload)
select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::jsonb[])
on conflict (event_id) do nothing returning event_id
"""
_KNOWN_EVENTS = "select event_id from incident_events where event_id = any($1::uuid[])"
_OFFSETS_UPSERT = """
insert into projector_offsets (consumer_group, topic, partition, next_offset)
select $1, t, p, o from unnest($2::text[], $3::int[], $4::bigint[]) as u(t, p, o)
on conflict (consumer_group, topic, partition)
do update set next_offset = greatest(projector_offsets.next_offset, excluded.next_offset)
"""


@dataclass
class Written:
    """What one batch changed: newly applied facts by event type (re-deliveries are not counted)."""

    applied: Counter = field(default_factory=Counter)
    facts: list[ev.Event] = field(default_factory=list)
    # facts ignored (services/shared/admission.py): (topic, partition, offset) and why
    refused: list[tuple[tuple[str, int, int], Refusal]] = field(default_factory=list)


async def connect(dsn: str, **server_settings: str) -> asyncpg.Connection:
    """A writer connection; its commits wait for the WAL flush (the server's default, stated so
    that no connection default can change it). With `synchronous_commit = off` a database crash
    lost the last batches with their offsets, but the projector reads its stored offsets only
    when partitions are assigned, so it went on from its consumer's position and the lost facts
    never reached the store: the soak of 2026-12-03 found two acknowledged facts missing after
    PostgreSQL was stopped `immediate` (docs/chaos.md)."""
    settings = {"synchronous_commit": "on", **server_settings}
    conn = await asyncpg.connect(dsn, timeout=5, command_timeout=60, server_settings=settings)
    await prepare(conn)
    return conn


class StatusStore:
    """The projector's repository (services.projector.ports.StatusStorePort) over one writer
    connection, opened when first needed. A failure to reach the database raises what asyncpg
    raises (the projector waits it out and calls `reset`); a refusal raises PostgresError."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: asyncpg.Connection | None = None

    async def _db(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await connect(self.dsn)
        return self.conn

    async def write_batch(self, batch: Batch, group: str) -> Written:
        return await write_batch(await self._db(), batch, group)

    async def stored_offsets(self, group: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        return await stored_offsets(await self._db(), group, topics)

    async def reset(self) -> None:
        """Drop the connection (after a failure, or at the end); the next write opens another."""
        if self.conn is not None:
            self.conn.terminate()
            self.conn = None


async def prepare(conn: asyncpg.Connection) -> None:
    """Per-connection staging tables, emptied at every commit."""
    await conn.execute(
        "create temp table if not exists tmp_incidents (like incidents) on commit delete rows"
    )


async def stored_offsets(conn: asyncpg.Connection, group: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    rows = await conn.fetch(
        "select topic, partition, next_offset from projector_offsets where consumer_group = $1 and topic = any($2::text[])",
        group, list(topics),
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def write_batch(conn: asyncpg.Connection, batch: Batch, group: str, *, swap_lock: bool = True) -> Written:
    """The whole batch in one transaction: timeline, state, escalations, tension, offsets."""
    written = Written()
    async with conn.transaction():
        if swap_lock:
            await conn.execute("select pg_advisory_xact_lock_shared($1)", SWAP_LOCK)
        unseen = await _unseen(conn, batch.timeline)
        states = await _lock_states(conn, [f for f in batch.facts if f.event_id in unseen])
        admitted = _admit(batch, unseen, states, written.refused)
        new_ids = await _insert_timeline(conn, [r for r in batch.timeline if r[0] in admitted])
        facts = [f for f in batch.facts if f.event_id in new_ids]
        await _apply_facts(conn, facts, states)
        await _upsert_escalations(conn, [e for e in batch.escalations if e.event_id in new_ids])
        tension = await _write_tension(conn, batch.tension)
        cases = await _write_cases(conn, batch.cases, batch.case_alerts)
        if batch.calendar:
            await conn.executemany(_CALENDAR_INSERT, [_calendar_row(*c) for c in batch.calendar])
        if batch.offsets:
            keys = list(batch.offsets)
            await conn.execute(
                _OFFSETS_UPSERT, group, [t for t, _ in keys], [p for _, p in keys], [batch.offsets[k] for k in keys]
            )
    written.facts = [*facts, *tension, *cases]
    written.applied.update(e.event_type for e in written.facts)
    return written


async def _unseen(conn: asyncpg.Connection, rows: list[tuple]) -> set[uuid.UUID]:
    """The event_ids of the batch's timeline rows not stored yet (a re-delivery is a no-op)."""
    if not rows:
        return set()
    known = {r[0] for r in await conn.fetch(_KNOWN_EVENTS, [r[0] for r in rows])}
    return {r[0] for r in rows} - known


def _admit(
    batch: Batch, unseen: set[uuid.UUID], states: dict[uuid.UUID, rules.IncidentState], refused: list,
) -> set[uuid.UUID]:
    """The unseen facts services.shared.admission takes, in log order (a report earlier in the
    batch fixes its incident's mode for the facts after it); the others go into `refused`."""
    first = {i: Reported(s.mode) for i, s in states.items() if s.reported}
    positions = {r[0]: (r[11], r[12], r[13]) for r in batch.timeline}
    admitted: set[uuid.UUID] = set()
    for fact in batch.facts:
        if fact.event_id not in unseen:
            continue
        why = refusal(first.get(fact.incident_id), fact.event_type, fact.mode, fact.incident_id)
        if why is not None:
            refused.append((positions[fact.event_id], why))
            continue
        admitted.add(fact.event_id)
        if fact.event_type == "IncidentReported":
            first[fact.incident_id] = Reported(fact.mode.value)
    return admitted


async def _insert_timeline(conn: asyncpg.Connection, new: list[tuple]) -> set[uuid.UUID]:
    if new:
        # Straight into the table: a staging table and INSERT ... ON CONFLICT cost twice the work.
        # Another instance inserting one of these ids meanwhile (a rebalance overlap) makes this
        # a unique violation: the batch is refused and applied record by record instead.
        await conn.copy_records_to_table("incident_events", records=new, columns=TIMELINE_COLUMNS)
    return {r[0] for r in new}


async def _lock_states(conn: asyncpg.Connection, facts: list[ev.IncidentEvent]) -> dict[uuid.UUID, rules.IncidentState]:
    """The current rows of the facts' incidents, locked for this transaction."""
    if not facts:
        return {}
    ids = sorted({f.incident_id for f in facts})  # a fixed lock order: no deadlock between instances
    rows = await conn.fetch(
        f"select {_Q(rules.COLUMNS)} from incidents where incident_id = any($1::uuid[]) order by incident_id for update",
        ids,
    )
    return {r["incident_id"]: rules.IncidentState(**_from_db(dict(r))) for r in rows}


async def _apply_facts(
    conn: asyncpg.Connection, facts: list[ev.IncidentEvent], states: dict[uuid.UUID, rules.IncidentState],
) -> None:
    if not facts:
        return
    for fact in facts:  # the states are this batch's own copies: step them in place
        state = states.get(fact.incident_id)
        states[fact.incident_id] = rules.step(state, fact) if state is not None else rules.apply(None, fact)
    touched = {f.incident_id for f in facts}
    await conn.copy_records_to_table(
        "tmp_incidents", records=[rules.as_row(s) for i, s in states.items() if i in touched], columns=rules.COLUMNS
    )
    await conn.execute(_INCIDENT_UPSERT)


def _from_db(row: dict) -> dict:
    """asyncpg returns jsonb as text and text[] as lists already; only the lists need copying."""
    for key in ("hazards", "agencies_required", "agencies_dispatched", "agencies_on_scene"):
        row[key] = list(row[key] or [])
    return row


def _escalation_rows(events: list[ev.EscalationRaised | ev.EscalationStoodDown]) -> list[tuple]:
    """One row per (incident, level): a raise and its stand-down in the same batch become one row."""
    rows: dict[tuple[uuid.UUID, int], dict] = {}
    for event in events:
        levels = (event.level,) if isinstance(event, ev.EscalationRaised) else event.levels
        for level in levels:
            row = rows.setdefault((event.incident_id, level), dict.fromkeys(_ESCALATION_COLUMNS))
            row.update(incident_id=event.incident_id, level=level, mode=event.mode.value)
            row["classification"] = ev.Classification.highest(
                ev.Classification(row["classification"]) if row["classification"] else None, event.classification
            ).value
            if isinstance(event, ev.EscalationRaised) and row["raised_event_id"] is None:
                row.update(
                    level_name=event.level_name, agencies=[a.value for a in event.agencies], rule_id=event.rule_id,
                    rule_set_version=event.rule_set_version, reason=event.reason, category=event.category.value,
                    severity=event.severity, ward_code=event.ward_code, methane=event.methane.model_dump_json(),
                    cap_xml=event.cap_xml, raised_event_id=event.event_id, raised_at=event.occurred_at,
                )
            elif isinstance(event, ev.EscalationStoodDown) and row["stood_down_event_id"] is None:
                row.update(
                    stood_down_event_id=event.event_id, stood_down_at=event.occurred_at,
                    stood_down_reason=event.reason, final_status=event.final_status.value,
                )
                if row["agencies"] is None:
                    row["agencies"] = [a.value for a in event.agencies]
    return [tuple(r[c] for c in _ESCALATION_COLUMNS) for r in rows.values()]


async def _upsert_escalations(conn: asyncpg.Connection, events: list) -> None:
    if events:
        await conn.executemany(_ESCALATION_UPSERT, _escalation_rows(events))


_CALENDAR_INSERT = """
insert into tension_calendar (event_id, event_type, subject_id, occurred_at, recorded_at, classification, mode,
    source_kind, source_id, ward_codes, category, starts_at, until, reason, payload, topic, "partition", "offset")
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17, $18)
on conflict (event_id) do nothing
"""


def _calendar_row(event: ev.Event, payload: str, pos) -> tuple:
    """A planned event (registered, updated, cancelled) or a silence, as one tension_calendar row."""
    if isinstance(event, ev.TensionSilenced):
        subject, wards, category, starts, until = (event.silence_id, [event.ward_code], event.category.value,
                                                   event.occurred_at, event.until)
    elif isinstance(event, ev.PlannedEventRegistered):
        subject, wards, category, starts, until = (event.planned_event_id, list(event.wards), None,
                                                   event.starts_at, event.ends_at)
    else:
        subject, wards, category, starts, until = event.planned_event_id, [], None, None, None
    return (event.event_id, event.event_type, subject, event.occurred_at, event.recorded_at,
            event.classification.value, event.mode.value, event.source.kind.value, event.source.id, wards, category,
            starts, until, getattr(event, "reason", None), payload, pos.topic, pos.partition, pos.offset)


async def _write_tension(conn: asyncpg.Connection, events: list[ev.TensionLevelChanged]) -> list[ev.TensionLevelChanged]:
    """History once per event_id; `ward_tension` keeps the latest change per (ward, mode)."""
    new: list[ev.TensionLevelChanged] = []
    for e in events:
        inserted = await conn.fetchval(
            _TENSION_HISTORY_INSERT,
            e.event_id, e.ward_code, e.ward_name, e.mode.value, e.classification.value, e.old_level.value,
            e.new_level.value, e.score, e.observed, e.expected, e.window, e.window_start, e.window_end,
            e.occurred_at, e.recorded_at,
            "[" + ",".join(c.model_dump_json() for c in e.top_contributors) + "]",
        )
        if inserted is not None:
            new.append(e)
    latest: dict[tuple[str, str], ev.TensionLevelChanged] = {}
    for e in new:
        key = (e.ward_code, e.mode.value)
        if key not in latest or (e.occurred_at, e.event_id) > (latest[key].occurred_at, latest[key].event_id):
            latest[key] = e
    if latest:
        await conn.executemany(
            _TENSION_NOW_UPSERT,
            [
                (e.ward_code, e.mode.value, e.ward_name, e.new_level.value, e.old_level.value, e.score, e.observed,
                 e.expected, e.window, e.window_start, e.window_end, e.occurred_at, e.event_id)
                for e in latest.values()
            ],
        )
    return new


def _case_row(e: ev.CaseworkCaseChanged) -> tuple:
    unmet = [c.due_at for c in e.clocks if c.met_at is None]
    return (
        e.case_id, e.kind.value, e.mode.value, e.classification.value, e.complainant_key, e.uprn, e.route.value,
        e.status, e.counted, e.threshold, "[" + ",".join(x.model_dump_json() for x in e.entries) + "]",
        "[" + ",".join(c.model_dump_json() for c in e.clocks) + "]", [a.value for a in e.agencies],
        list(e.housing_providers), min(unmet) if unmet else None, e.as_of, e.case_version, e.event_id,
    )


async def _write_cases(conn: asyncpg.Connection, cases: list[ev.CaseworkCaseChanged],
                       alerts: list[ev.CaseworkEvent]) -> list[ev.Event]:
    """Each case's newest picture (by as_of, then its version); each alert once by event_id."""
    latest: dict[uuid.UUID, ev.CaseworkCaseChanged] = {}
    for e in cases:
        if e.case_id not in latest or (e.as_of, e.case_version) >= (latest[e.case_id].as_of, latest[e.case_id].case_version):
            latest[e.case_id] = e
    if latest:
        await conn.executemany(_CASE_UPSERT, [_case_row(e) for e in latest.values()])
    new: list[ev.Event] = []
    if alerts:
        inserted = {
            r["event_id"] for r in await conn.fetch(
                _CASE_ALERT_INSERT, [a.event_id for a in alerts], [a.case_id for a in alerts],
                [a.event_type for a in alerts], [a.mode.value for a in alerts],
                [a.classification.value for a in alerts], [a.occurred_at for a in alerts],
                [a.model_dump_json() for a in alerts],
            )
        }
        new = [a for a in alerts if a.event_id in inserted]
    return [*latest.values(), *new]
