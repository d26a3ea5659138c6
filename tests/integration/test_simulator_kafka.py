"""`muster simulate` straight to the real broker, and the run summary read back from it."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest

from services.shared import events as ev
from services.shared.codec import decode, encode, superseded
from services.shared.kafka import make_producer
from services.simulator import app as simulator
from services.simulator.generator import FeedConfig, generate
from services.simulator.scenarios import SCENARIOS
from services.simulator.summary import read_outcome, read_to_end
from tests import factories as f

pytestmark = [pytest.mark.kafka]


def _incident_key(key: bytes | None) -> uuid.UUID | None:
    """Other tests put poison records with arbitrary keys on the same topic."""
    try:
        return uuid.UUID(key.decode())
    except (AttributeError, ValueError):
        return None


async def test_simulating_n_events_to_kafka_leaves_exactly_n_records_keyed_and_in_order(test_settings, topics):
    seed = random.SystemRandom().randrange(10**9)  # a fresh seed: ids no other test run has used
    feed = FeedConfig(start=f.T0, hours=72, seed=seed, scenarios=tuple((n, None) for n in SCENARIOS))
    options = simulator.Options(feed=feed, events=1500, progress=False, batch=200)

    report = await simulator.simulate(test_settings, options)

    assert report.played.sent == 1500
    ours = report.tally.incident_ids
    records = [r for r in await read_to_end(test_settings, topics.name("incidents")) if _incident_key(r.key) in ours]
    copies = [r for r in records if superseded(r.headers)]  # ResponderDispatched v1 beside v2 (docs/contract.md)
    records = [r for r in records if not superseded(r.headers)]
    assert len(records) == 1500
    assert len(copies) == sum(1 for r in records if dict(r.headers)["event_type"] == b"ResponderDispatched") > 0
    expected = defaultdict(list)
    for event in list(generate(feed))[:1500]:
        expected[event.incident_id].append(event.event_id)
    seen, partitions = defaultdict(list), defaultdict(set)
    for record in records:  # read partition by partition, in offset order
        event = decode(record.value)
        assert record.key == str(event.incident_id).encode()
        assert dict(record.headers)["event_type"] == event.event_type.encode()
        seen[event.incident_id].append(event.event_id)
        partitions[event.incident_id].add(record.partition)
    assert seen == expected
    assert all(len(p) == 1 for p in partitions.values())


async def test_the_summary_counts_this_runs_escalations_by_level_and_agency_and_tension_by_ward(own_topics):
    # Topics of its own: a tension worker of another test publishes alerts on the shared ones.
    test_settings, topics = own_topics
    mine, other = uuid.uuid4(), uuid.uuid4()
    methane = ev.Methane(major_incident=True, exact_location="Poplar", type="fire", hazards=("smoke",),
                         access="East India Dock Road", number_of_casualties=ev.Casualties(serious=2),
                         emergency_services_present=(), emergency_services_required=("fire",))
    system = f.source("system", "escalation", None)

    def raised(incident_id, level, agencies):
        return ev.EscalationRaised(
            event_id=ev.derived_event_id(incident_id, level), incident_id=incident_id, occurred_at=f.T0,
            source=system, level=level, level_name=f"level {level}", agencies=agencies, rule_id="r1",
            rule_set_version="1", reason="test", category="fire", severity=5, ward_code=f.POPLAR, methane=methane)

    unique_ward = "Whitechapel"
    tension = ev.TensionLevelChanged(
        occurred_at=f.T0, source=system, ward_code=f.WHITECHAPEL, ward_name=unique_ward, old_level="normal",
        new_level="high", score=3.2, observed=16, expected=5, window="24h/1h", window_start=f.T0 - timedelta(hours=24),
        window_end=f.T0)
    producer = make_producer(test_settings)
    await producer.start()
    import time

    since_ms = int(time.time() * 1000)
    try:
        for event, topic in ((raised(mine, 1, ("council",)), "escalations.all"),
                             (raised(mine, 3, ("fire", "police", "ambulance")), "escalations.all"),
                             (raised(other, 2, ("police",)), "escalations.all"), (tension, "tension.alerts")):
            record = encode(event)
            await producer.send_and_wait(topics.name(topic), record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()

    outcome = await read_outcome(test_settings, 7, {mine}, since_ms=since_ms)

    assert outcome.incidents == 7
    assert outcome.escalations_by_level == {1: 1, 3: 1}
    assert outcome.escalations_by_agency == {"council": 1, "fire": 1, "police": 1, "ambulance": 1}
    assert outcome.tension_by_ward == {unique_ward: (1, "high")}
    assert "level 1: 1, level 3: 1" in "\n".join(outcome.lines())
