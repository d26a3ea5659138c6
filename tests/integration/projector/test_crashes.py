"""Whatever crashes when: kill -9 of the projector, PostgreSQL going away under load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from services.dev.postgres import LocalPostgres
from services.projector import metrics, schema
from services.shared.codec import encode
from services.shared.settings import REPO_ROOT
from tests.integration.projector.checks import assert_store_is_the_fold, caught_up, end_offsets
from tests.projector_load import stream
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

KILL_EVENTS = int(os.environ.get("MUSTER_TEST_KILL_EVENTS", "30000"))
KILLS = 5


async def _publish_all(world, events) -> None:
    topic = world.catalog.name("incidents")
    futures = []
    for event in events:
        e = encode(event)
        futures.append(await world.producer.send(topic, e.value, key=e.key, headers=e.headers))
    await asyncio.gather(*futures)


async def _timeline(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("select count(*) from incident_events")
    finally:
        await conn.close()


def _spawn(world, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "MUSTER_TOPIC_PREFIX": world.settings.topic_prefix,
        "MUSTER_DATABASE_URL": world.dsn,
        "MUSTER_KAFKA_BOOTSTRAP": world.settings.kafka_bootstrap,
        "MUSTER_PROJECTOR_CONSUMER_GROUP": world.settings.projector_consumer_group,
        "MUSTER_PROJECTOR_INSTANCE_ID": "kill-9-test",
        "MUSTER_PROJECTOR_METRICS_PORT": "0",
        "MUSTER_PROJECTOR_BATCH_MAX_RECORDS": "2000",
        "MUSTER_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "services.cli", "run", "projector"], env=env, cwd=REPO_ROOT,
                            stdout=log, stderr=log)


async def test_kill_9_during_a_load_loses_and_doubles_nothing(world, tmp_path):
    events = stream(KILL_EVENTS, seed=11)
    publishing = asyncio.create_task(_publish_all(world, events))
    log = open(tmp_path / "projector.log", "wb")
    proc = _spawn(world, log)
    try:
        distinct = len({e.event_id for e in events})
        step = max(500, distinct // (KILLS + 3))
        for kill in range(KILLS):
            target = min(await _timeline(world.dsn) + step, distinct)
            await wait_until(lambda: _grown(world.dsn, target), timeout=120, interval=0.1,
                             what=f"progress before kill {kill + 1}")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc = _spawn(world, log)
        await publishing
        ends = await end_offsets(world.settings, [world.catalog.name("incidents")])
        await wait_until(lambda: caught_up(world.dsn, world.settings.projector_consumer_group, ends), timeout=240,
                         interval=0.5, what="the projector caught up after the kills")
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    await assert_store_is_the_fold(world.dsn, events)


async def _grown(dsn: str, n: int) -> bool:
    return await _timeline(dsn) >= n


@pytest.fixture
async def own_postgres(world, tmp_path):
    """A throwaway PostgreSQL of this test's own (never the shared one), migrated."""
    import asyncpg

    port = free_port()
    dsn = f"postgresql://postgres@127.0.0.1:{port}/muster"
    settings = world.settings.model_copy(update={
        "home": tmp_path / "home", "pg_port": port, "database_url": type(world.settings.database_url)(dsn),
    })
    pg = LocalPostgres(settings)
    await asyncio.to_thread(pg.up)
    conn = await asyncpg.connect(dsn)
    await schema.migrate(conn)
    await conn.close()
    try:
        yield settings, pg
    finally:
        await asyncio.to_thread(pg.down)


async def test_postgres_going_away_during_a_load_loses_nothing_and_dead_letters_nothing(world, own_postgres, running):
    settings, pg = own_postgres
    events = stream(8000, seed=23)
    half = len(events) // 2
    await _publish_all(world, events[:half])
    retries_before = metrics.DB_RETRIES._value.get()
    dead_before = sum(s.value for m in metrics.DEAD_LETTERS.collect() for s in m.samples if s.name.endswith("_total"))
    running(settings)
    await wait_until(lambda: _grown(pg.dsn, 500), timeout=60, what="some events applied")
    await asyncio.to_thread(pg.down)
    publishing = asyncio.create_task(_publish_all(world, events[half:]))
    await wait_until(lambda: metrics.DB_RETRIES._value.get() >= retries_before + 3, timeout=60,
                     what="the projector retrying while the database is down")
    await asyncio.to_thread(pg.up)
    await publishing
    ends = await end_offsets(world.settings, [world.catalog.name("incidents")])
    await wait_until(lambda: caught_up(pg.dsn, settings.projector_consumer_group, ends), timeout=120, interval=0.5,
                     what="the projector caught up after the outage")
    await assert_store_is_the_fold(pg.dsn, events)
    dead_after = sum(s.value for m in metrics.DEAD_LETTERS.collect() for s in m.samples if s.name.endswith("_total"))
    assert dead_after == dead_before, "a database outage dead-lettered records"
    letters = await end_offsets(world.settings, [world.catalog.name("deadletter")])
    assert sum(letters.values()) == 0, "a database outage dead-lettered records"
