"""The key service on the real PostgreSQL: a key only for a reader the database agrees is
cleared for people, none for any other role, and the retention schedule erases exactly what
fell due."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from services.people import retention
from services.shared import keys
from services.shared.events import IncidentStatusChanged, IncidentLinked
from tests import factories as f
from tests.integration.people.conftest import as_role, write_facts

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]  # the projector's world: its own database

T = datetime(2020, 2, 29, 12, 0, tzinfo=timezone.utc)  # a leap day: years after it land on 1 March


async def _connect(dsn: str, role: str | None = None) -> asyncpg.Connection:
    return await asyncpg.connect(as_role(dsn, role) if role else dsn)


async def _scope(conn, role: str, agency: str, reason: str = "") -> None:
    await conn.execute("select set_config('muster.role', $1, false), set_config('muster.agency', $2, false), "
                       "set_config('muster.reason', $3, false)", role, agency, reason)


async def test_only_a_reader_cleared_for_people_gets_a_key(world):
    people_db = world.dsn
    report = f.reported(category="domestic_abuse", source=f.source(agency="police"), agencies_required=("police",))
    await write_facts(people_db, report)
    intake = await _connect(people_db, "muster_intake")
    try:
        made = await keys.keys_for_sealing(intake, [report.incident_id])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await keys.key_for_reading(intake, report.incident_id)
    finally:
        await intake.close()
    key = made[report.incident_id]

    query = await _connect(people_db, "muster_query")
    try:
        cases = [("control_room", "police", "safeguarding referral", True),
                 ("safeguarding", "police", "safeguarding referral", True),
                 ("control_room", "police", "", False),              # no stated reason
                 ("cctv_operator", "police", "reviewing footage", False),  # not an operational role
                 ("analyst", "police", "monthly figures", False),
                 ("control_room", "council", "asked by phone", False),   # not an owning agency
                 ("safeguarding", "housing", "referral", False),         # cleared role, but people need an owner
                 ("", "", "", False)]                                    # no scope at all
        for role, agency, reason, cleared in cases:
            await _scope(query, role, agency, reason)
            got = await keys.key_for_reading(query, report.incident_id)
            assert (got == key) if cleared else got is None, (role, agency, reason)
        await _scope(query, "control_room", "police", "x")
        assert await keys.key_for_reading(query, uuid.uuid4()) is None  # no such incident
        for sql, args in (("select * from muster_keys.data_keys", ()), ("select * from muster_keys.held()", ()),
                          ("select * from muster_keys.erase($1, 'me', 'why', 'request')", (report.incident_id,)),
                          ("select * from muster_keys.keys_for_sealing($1, $2)", ([report.incident_id], [b"x" * 32]))):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await query.fetch(sql, *args)
    finally:
        await query.close()

    for role in ("muster_projector", "muster_owner", "muster_intake"):
        conn = await _connect(people_db, role)
        try:
            await _scope(conn, "control_room", "police", "x")
            for sql in ("select data_key from muster_keys.data_keys", "select muster_keys.key_for_reading($1)"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(sql, *([report.incident_id] if "$1" in sql else []))
        finally:
            await conn.close()
    for role in ("muster_projector", "muster_intake", "muster_query"):
        conn = await _connect(people_db, role)
        try:  # and nobody but the administrator can rewrite the erasures' record or the keys
            for sql in ("delete from muster_keys.erasures", "update muster_keys.data_keys set data_key = null"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
        finally:
            await conn.close()


def _closed(at: datetime, **report) -> list:
    r = f.reported(**report)
    return [r, f.fact(IncidentStatusChanged, r.incident_id, at, status="resolved", mode=r.mode)]


async def test_the_retention_schedule_erases_exactly_what_fell_due(world):
    people_db = world.dsn
    official = _closed(T, category="fire")
    sensitive = _closed(T, category="domestic_abuse", source=f.source(agency="police"))
    child = _closed(T, category="safeguarding_child")
    exercise = _closed(T, category="fire", mode="exercise", exercise="Ex Lantern")
    test_mode = _closed(T, category="fire", mode="test")
    still_open = [f.reported(category="fire", occurred_at=T - timedelta(days=4000))]
    lead = official[0]
    duplicate = f.reported(category="fire")
    linked = [duplicate, f.fact(IncidentLinked, duplicate.incident_id, T, lead_incident_id=lead.incident_id)]
    no_key = _closed(T - timedelta(days=9000), category="fire")
    groups = [official, sensitive, child, exercise, test_mode, still_open, linked, no_key]
    await write_facts(people_db, *[e for g in groups for e in g])
    conn = await _connect(people_db)
    try:
        await keys.keys_for_sealing(conn, [g[0].incident_id for g in groups if g is not no_key])
        schedule = retention.Schedule()  # the defaults (settings.py)
        six_years = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)  # 29 Feb 2020 + 6 years
        tick = timedelta(microseconds=1)

        async def erased_at(now) -> set[uuid.UUID]:
            return {d.incident_id for d in await retention.run(conn, schedule, now)}

        assert await erased_at(T + timedelta(days=7) - tick) == set()
        assert await erased_at(T + timedelta(days=7)) == {test_mode[0].incident_id}
        assert await erased_at(T + timedelta(days=90) - tick) == set()
        assert await erased_at(T + timedelta(days=90)) == {exercise[0].incident_id}
        assert await erased_at(six_years - tick) == set()
        assert await erased_at(six_years) == {official[0].incident_id, sensitive[0].incident_id,
                                              duplicate.incident_id}  # a duplicate closes with its lead
        assert await erased_at(datetime(2045, 3, 1, 12, 0, tzinfo=timezone.utc) - tick) == set()
        assert await erased_at(datetime(2045, 3, 1, 12, 0, tzinfo=timezone.utc)) == {child[0].incident_id}
        assert await erased_at(datetime(2200, 1, 1, tzinfo=timezone.utc)) == set()  # the open one never falls due
        assert set(await keys.held(conn)) == {still_open[0].incident_id}
        rows = await conn.fetch("select incident_id, basis, erased_by, reason from muster_keys.erasures")
        assert len(rows) == 6 and {r["basis"] for r in rows} == {"retention"}
        assert {r["erased_by"] for r in rows} == {retention.BY}
        child_row = next(r for r in rows if r["incident_id"] == child[0].incident_id)
        assert "safeguarding_child: 25 years" in child_row["reason"]
    finally:
        await conn.close()
