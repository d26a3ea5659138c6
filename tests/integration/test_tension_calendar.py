"""Planned events on the real broker: histories with event times in the past, reports through
the incidents topic and planned events through the calendar topic (as intake writes them), read
by the real tension worker. What it publishes must equal the offline replay of the same log
(services/tension/offline.py, the pure rules over the topics as they stand), and:

- two identical Bonfire Night weeks, with and without the planned event: no alert with it, at
  least one without;
- a contentious march puts the wards of its route on watch 24 to 72 hours ahead of its start.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import orjson
import pytest

from services.shared.codec import decode
from services.shared.events import TensionLevel
from services.shared.topics import TopicCatalog
from services.tension.app import build
from services.tension.facts import CALENDAR_TYPES
from services.tension.offline import replay_log
from tests.integration.tension_support import everything_evaluated, expected_alerts, fresh_topics, produce, read_all
from tests.tension_history import (
    BOW_EAST,
    BOW_WEST,
    MILE_END,
    START,
    WHITECHAPEL,
    background,
    bonfire_night,
    planned,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def settings_for(test_settings, tmp_path, unique: str):
    return (await fresh_topics(test_settings, unique)).model_copy(update={"home": tmp_path / unique})


async def live_and_offline(test_settings, tmp_path, unique: str, history: list) -> tuple[dict, dict]:
    """The alerts the real worker published for a history, and the offline replay of its log
    (both by event id); the replay also equals the rules fed the history directly."""
    settings = await settings_for(test_settings, tmp_path, unique)
    catalog = TopicCatalog.from_settings(settings)
    ordered = sorted(history, key=lambda e: e.occurred_at)
    tension = build(settings)
    await tension.app.start()
    try:
        await produce(settings, catalog.name("tension.calendar"), [e for e in ordered if e.event_type in CALENDAR_TYPES])
        await produce(settings, catalog.name("incidents"), [e for e in ordered if e.event_type not in CALENDAR_TYPES])
        await everything_evaluated(settings, tension)
    finally:
        await tension.app.stop()
    published = {a.event_id: a for a in await read_all(settings, catalog.name("tension.alerts"))}
    offline = {a.event_id: a for a in await replay_log(settings)}
    assert offline == {a.event_id: a for a in expected_alerts(ordered)}
    return published, offline


async def test_two_identical_bonfire_nights_alert_without_their_planned_event_and_not_with_it(
        test_settings, tmp_path, unique):
    history, event = bonfire_night(0)
    without, offline = await live_and_offline(test_settings, tmp_path, f"{unique}-without", history)
    assert without == offline
    raised = [a for a in without.values() if a.new_level.rank >= TensionLevel.ELEVATED.rank]
    assert {a.ward_code for a in raised} == {BOW_EAST, BOW_WEST}
    assert all(event.starts_at <= a.occurred_at <= event.ends_at for a in raised if a.early)

    with_it, offline = await live_and_offline(test_settings, tmp_path, f"{unique}-with", history + [event])
    assert with_it == offline == {}


async def test_a_contentious_march_puts_its_route_on_watch_ahead_of_time(test_settings, tmp_path, unique):
    quiet = background(days=21, ward_codes=[WHITECHAPEL, BOW_EAST, BOW_WEST, MILE_END], seed=5)
    starts = START + timedelta(days=18, hours=13)
    route = [WHITECHAPEL, MILE_END, BOW_EAST]
    march = planned(route, starts, 4, kind="march", name="March through the East End", contentious=True, route=True,
                    registered=starts - timedelta(days=4))
    published, offline = await live_and_offline(test_settings, tmp_path, unique, quiet + [march])
    assert published == offline
    for ward in route:
        first = min((a for a in published.values() if a.ward_code == ward), key=lambda a: a.occurred_at)
        assert first.new_level is TensionLevel.WATCH
        assert starts - timedelta(hours=72) <= first.occurred_at <= starts - timedelta(hours=24)
        assert [(p.name, p.role.value) for p in first.planned_events] == [(march.name, "raised")]
    assert not [a for a in published.values() if a.ward_code == BOW_WEST]


async def test_muster_tension_replay_prints_what_the_worker_published(test_settings, tmp_path, unique):
    history, _ = bonfire_night(0)
    published, _ = await live_and_offline(test_settings, tmp_path, unique, history)
    settings = await settings_for(test_settings, tmp_path, unique)  # the same topics (created already)
    env = {**os.environ, "MUSTER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "MUSTER_TOPIC_PREFIX": settings.topic_prefix}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "services.cli", "tension", "replay"],
                                   env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    lines = done.stdout.splitlines()
    assert lines and all(orjson.loads(line)["event_type"] == "TensionLevelChanged" for line in lines)
    assert {a.event_id: a for a in map(decode, lines)} == published
