"""`muster run tension` killed with SIGKILL and restarted: state comes back from the
changelog and no alert is raised a second time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from services.shared.kafka import committed_metadata, read_log
from services.shared.topics import TopicCatalog
from services.tension.app import app_id_for, rekey_group_for
from tests.integration.tension_support import caught_up, expected_alerts, fresh_topics, produce, read_all
from tests.support import free_port, wait_until
from tests.tension_history import START, WHITECHAPEL, background, burst, in_time_order

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MUSTER = Path(sys.executable).with_name("muster")


def start_worker(settings, home: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "MUSTER_TOPIC_PREFIX": settings.topic_prefix,
        "MUSTER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MUSTER_HOME": str(home),
        "MUSTER_KAFKA_CREDENTIALS_FILE": str(settings.kafka_credentials_path),  # the session broker's users
        "MUSTER_TENSION_METRICS_PORT": str(free_port()),
        "MUSTER_LOG_FORMAT": "json",
    }
    return subprocess.Popen([str(MUSTER), "run", "tension"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def everything_committed(settings, group: str, catalog: TopicCatalog) -> bool:
    """The re-keying stage has committed the incidents topic and the scorer the by-ward topic."""
    return (await caught_up(settings, rekey_group_for(group), [catalog.name("incidents")])
            and await caught_up(settings, group, [f"{group}-by-ward"]))


async def assert_clocks_committed(settings, group: str, topic: str) -> None:
    """Each partition's clock is committed with its offset: the newest occurred_at there."""
    log = await read_log(settings, [topic])
    newest = {tp: max(int(datetime.fromisoformat(orjson.loads(r.value)["occurred_at"]).timestamp()) for r in rows)
              for tp, rows in log.items() if rows}
    committed = await committed_metadata(settings, group, list(newest))
    assert newest and {tp: orjson.loads(committed[tp][1])["clocks"]["live"] for tp in newest} == newest


async def test_a_worker_killed_with_sigkill_comes_back_from_its_changelog_without_raising_twice(
    test_settings, tmp_path, unique
):
    settings = await fresh_topics(test_settings, unique)
    catalog = TopicCatalog.from_settings(settings)
    evening = START + timedelta(days=17, hours=18)
    history = in_time_order(background(), burst(WHITECHAPEL, evening))
    expected = {a.event_id: a for a in expected_alerts(history)}
    cut = START + timedelta(days=18, hours=12)  # after the rise, before the ward comes down
    before = [e for e in history if e.occurred_at < cut]
    raised_before = {i for i, a in expected.items() if a.occurred_at < cut - timedelta(hours=3)}
    assert raised_before and len(raised_before) < len(expected)
    group = app_id_for(settings)
    log = tmp_path / "worker.log"

    worker = start_worker(settings, tmp_path / "home", log)
    try:
        await produce(settings, catalog.name("incidents"), before)

        async def rose() -> bool:
            return {a.event_id for a in await read_all(settings, catalog.name("tension.alerts"))} >= raised_before

        await wait_until(rose, timeout=120, what=f"the rise to be published (log: {log})")
        await wait_until(lambda: everything_committed(settings, group, catalog), timeout=60,
                         what="the worker to commit its offsets")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    await assert_clocks_committed(settings, rekey_group_for(group), catalog.name("incidents"))

    worker = start_worker(settings, tmp_path / "home", log)
    try:
        await produce(settings, catalog.name("incidents"), [e for e in history if e.occurred_at >= cut])

        async def all_published() -> bool:
            return len(await read_all(settings, catalog.name("tension.alerts"))) >= len(expected)

        await wait_until(all_published, timeout=120, what=f"the come-down after the restart (log: {log})")
        await wait_until(lambda: everything_committed(settings, group, catalog), timeout=60,
                         what="the restarted worker to commit its offsets")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    published = await read_all(settings, catalog.name("tension.alerts"))
    assert len(published) == len(expected)  # nothing raised a second time
    assert {a.event_id: a for a in published} == expected
    assert published[-1].old_level.rank > published[-1].new_level.rank  # the come-down used the restored level
