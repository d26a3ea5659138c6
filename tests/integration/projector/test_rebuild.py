"""`muster projector rebuild` gives the live store again, row for row, and swaps it in."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from services.projector.rebuild import rebuild
from services.projector.schema import TABLES
from tests.factories import T0
from tests.integration.projector.checks import caught_up, end_offsets
from tests.integration.projector.test_offsets_and_failures import _raised, _tension
from tests.projector_load import stream
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

_ORDER = {
    "incidents": "incident_id", "incident_events": "event_id", "escalations": "incident_id, level",
    "ward_tension": "ward_code, mode", "ward_tension_history": "event_id",
    "tension_calendar": "event_id", "casework_cases": "case_id", "casework_alerts": "event_id",
    "projector_offsets": "consumer_group, topic, partition",
}


async def _snapshot(dsn: str) -> dict[str, list]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: [tuple(r) for r in await conn.fetch(f"select * from {t} order by {_ORDER[t]}")] for t in TABLES}
    finally:
        await conn.close()


async def _publish_mixed(world, n: int, seed: int):
    events = stream(n, seed=seed)
    await world.publish(*events)
    reports = [e for e in events if e.event_type == "IncidentReported"][:20]
    await world.publish(*[_raised(r.incident_id, 1, r.occurred_at + timedelta(minutes=1)) for r in reports],
                        topic=world.catalog.escalation_topic(None, exercise=False))
    await world.publish(_tension("elevated", "normal", T0), _tension("high", "elevated", T0 + timedelta(hours=1)),
                        topic=world.catalog.name("tension.alerts"))
    await world.publish_raw(b"not json at all")


async def test_a_rebuild_equals_the_live_store_row_for_row(world, running):
    await _publish_mixed(world, 3000, seed=5)
    running()
    ends = await end_offsets(world.settings, [world.catalog.name("incidents")])
    await wait_until(lambda: caught_up(world.dsn, world.settings.projector_consumer_group, ends), timeout=60,
                     what="live projector caught up")
    await wait_until(lambda: _count(world, "escalations", 20), timeout=30, what="escalations applied")
    await wait_until(lambda: _count(world, "ward_tension_history", 2), timeout=30, what="tension applied")
    live = await _snapshot(world.dsn)
    result = await rebuild(world.settings, progress=False)
    rebuilt = await _snapshot(world.dsn)
    assert result.records == sum(ends.values()) + 20 + 2
    for table in TABLES:
        assert rebuilt[table] == live[table], f"{table} differs after the rebuild"
    assert len(rebuilt["incidents"]) > 500


async def _count(world, table: str, n: int) -> bool:
    return await world.fetchval(f"select count(*) from {table}") >= n


async def test_the_live_projector_carries_on_into_the_swapped_tables(world, running):
    await _publish_mixed(world, 1000, seed=6)
    running()
    await rebuild(world.settings, progress=False)
    more = stream(1000, seed=8)
    await world.publish(*more)
    ends = await end_offsets(world.settings, [world.catalog.name("incidents")])
    await wait_until(lambda: caught_up(world.dsn, world.settings.projector_consumer_group, ends), timeout=60,
                     what="live projector caught up after the swap")
    ids = {r[0] for r in await world.fetch("select event_id from incident_events")}
    assert {e.event_id for e in more} <= ids
    assert await world.fetchval("select count(*) from pg_namespace where nspname like 'projector_%'") == 0
