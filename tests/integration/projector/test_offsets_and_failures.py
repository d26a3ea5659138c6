"""Offsets live with the rows; restarts resume exactly; poison goes to the dead-letter topic."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.shared.kafka import topic_partitions
from services.shared import events as ev
from services.shared.kafka import make_consumer
from tests.factories import BOW_EAST, T0, reported, source
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _offsets(world) -> dict[tuple[str, int], int]:
    rows = await world.fetch("select topic, partition, next_offset from projector_offsets")
    return {(r[0], r[1]): r[2] for r in rows}


async def _read_all(settings, topic: str) -> list:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(settings, [topic])
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out = []
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += records
        return out
    finally:
        await consumer.stop()


async def test_offsets_are_stored_with_the_rows_they_produced(world, running):
    events = [reported() for _ in range(20)]
    acks = await world.publish(*events)
    running()
    await wait_until(lambda: _timeline_has(world, 20), timeout=60, what="20 reports applied")
    expected: dict[tuple[str, int], int] = {}
    for ack in acks:
        key = (ack.topic, ack.partition)
        expected[key] = max(expected.get(key, 0), ack.offset + 1)
    offsets = await _offsets(world)
    assert {k: v for k, v in offsets.items() if v} == expected
    assert await world.fetchval("select count(*) from incidents") == 20


async def _timeline_has(world, n: int) -> bool:
    return await world.fetchval("select count(*) from incident_events") >= n


async def test_a_restart_resumes_exactly_where_the_last_commit_left_off(world, running):
    first = [reported() for _ in range(30)]
    await world.publish(*first)
    one = running()
    await wait_until(lambda: _timeline_has(world, 30), timeout=60, what="first 30 applied")
    one.stop()
    await wait_until(lambda: one.consumer._closed, timeout=30, what="first projector stopped")
    second = [reported() for _ in range(25)]
    await world.publish(*second)
    two = running()
    await wait_until(lambda: _timeline_has(world, 55), timeout=60, what="second 25 applied")
    assert two.records_read == 25, "the second projector re-read or skipped records"
    assert await world.fetchval("select count(*) from incident_events") == 55


async def test_a_poison_record_is_dead_lettered_and_its_offset_advances(world, running):
    good = reported()
    poison_ack = await world.publish_raw(b'{"event_type": "IncidentReported", "severity": 9}')
    await world.publish(good)
    running()
    await wait_until(lambda: _timeline_has(world, 1), timeout=60, what="the good record applied")
    offsets = await _offsets(world)
    assert offsets[(poison_ack.topic, poison_ack.partition)] > poison_ack.offset
    letters = [decode_letter(r.value) for r in await _read_all(world.settings, world.catalog.name("deadletter"))]
    mine = [x for x in letters if (x["source_partition"], x["source_offset"]) == (poison_ack.partition, poison_ack.offset)]
    assert len(mine) == 1
    assert mine[0]["service"] == "projector" and "severity" in mine[0]["error"]


def decode_letter(value: bytes) -> dict:
    import json

    return json.loads(value)


async def test_a_record_the_database_refuses_is_dead_lettered_and_the_rest_of_its_batch_applies(world, running):
    refused = reported(description="contains a NUL \x00 byte")
    fine = [reported() for _ in range(5)]
    acks = await world.publish(fine[0], refused, *fine[1:])
    running()
    await wait_until(lambda: _offsets_cover(world, acks), timeout=60, what="every offset stored")
    assert await world.fetchval("select count(*) from incident_events") == 5
    assert await world.fetchval("select count(*) from incidents where incident_id = $1", refused.incident_id) == 0
    letters = [decode_letter(r.value) for r in await _read_all(world.settings, world.catalog.name("deadletter"))]
    assert [x["source_offset"] for x in letters] == [acks[1].offset]
    assert "refused" in letters[0]["error"]


async def _offsets_cover(world, acks) -> bool:
    offsets = await _offsets(world)
    return all(offsets.get((a.topic, a.partition), 0) > a.offset for a in acks)


def _raised(incident_id, level: int, at) -> ev.EscalationRaised:
    return ev.EscalationRaised(
        incident_id=incident_id, occurred_at=at, recorded_at=at, source=source("system", "escalation", None),
        level=level, level_name="duty officer", agencies=("council",), rule_id="severity-4", rule_set_version="1",
        reason="severity 4", category="fire", severity=4, ward_code=BOW_EAST,
        event_id=ev.derived_event_id("esc", incident_id, level),
        methane=ev.Methane(major_incident=False, exact_location=BOW_EAST, type="fire", hazards=(), access="main road",
                           number_of_casualties=ev.Casualties(), emergency_services_present=(),
                           emergency_services_required=("fire",)),
    )


async def test_escalations_are_projected_with_the_highest_level_on_the_incident(world, running):
    report = reported(category="fire", severity=4)
    i = report.incident_id
    topic = world.catalog.escalation_topic(None, exercise=False)
    await world.publish(report)
    raised = [_raised(i, 1, T0 + timedelta(minutes=1)), _raised(i, 2, T0 + timedelta(minutes=5))]
    stood_down = ev.EscalationStoodDown(
        incident_id=i, occurred_at=T0 + timedelta(hours=1), recorded_at=T0 + timedelta(hours=1),
        source=source("system", "escalation", None), levels=(1, 2), agencies=("council",), reason="resolved",
        final_status="resolved", rule_set_version="1",
    )
    await world.publish(*raised, raised[0], stood_down, topic=topic)
    running()
    await wait_until(lambda: _timeline_has(world, 4), timeout=60, what="report and escalations applied")
    rows = await world.fetch("select level, raised_at, stood_down_at, final_status from escalations order by level")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (1, T0 + timedelta(minutes=1), T0 + timedelta(hours=1), "resolved"),
        (2, T0 + timedelta(minutes=5), T0 + timedelta(hours=1), "resolved"),
    ]
    assert await world.fetchval("select escalation_level from incidents where incident_id = $1", i) == 2


def _tension(level: str, old: str, at, ward=BOW_EAST) -> ev.TensionLevelChanged:
    return ev.TensionLevelChanged(
        occurred_at=at, recorded_at=at, source=source("system", "tension", None), ward_code=ward, ward_name="Bow East",
        old_level=old, new_level=level, score=2.5, observed=5, expected=2, window="24h/1h",
        window_start=at - timedelta(hours=24), window_end=at,
    )


async def test_ward_tension_keeps_the_latest_level_and_every_change(world, running):
    changes = [_tension("elevated", "normal", T0), _tension("high", "elevated", T0 + timedelta(hours=2))]
    await world.publish(changes[1], changes[0], changes[1], topic=world.catalog.name("tension.alerts"))
    running()
    await wait_until(lambda: _history_has(world, 2), timeout=60, what="tension history")
    now = await world.fetch("select ward_code, level, previous_level, changed_at from ward_tension")
    assert [tuple(r) for r in now] == [(BOW_EAST, "high", "elevated", T0 + timedelta(hours=2))]


async def _history_has(world, n: int) -> bool:
    return await world.fetchval("select count(*) from ward_tension_history") >= n


async def test_an_event_on_a_topic_that_does_not_carry_its_type_is_dead_lettered_not_applied(world, running):
    report = reported(category="fire", severity=4)
    await world.publish(report)
    forged = _raised(report.incident_id, 3, T0 + timedelta(minutes=1))  # an escalation on the incidents topic
    wrong_tension = _tension("critical", "normal", T0)                   # a tension alert on an escalation topic
    acks = await world.publish(forged)
    acks += await world.publish(wrong_tension, topic=world.catalog.escalation_topic(None, exercise=False))
    running()
    await wait_until(lambda: _offsets_cover(world, acks), timeout=60, what="every offset stored")
    assert await world.fetchval("select count(*) from escalations where incident_id = $1", report.incident_id) == 0
    assert await world.fetchval("select count(*) from ward_tension") == 0
    letters = [decode_letter(r.value) for r in await _read_all(world.settings, world.catalog.name("deadletter"))]
    reasons = {(x["source_topic"], x["source_offset"]): x["error"] for x in letters}
    assert "EscalationRaised does not belong on topic" in reasons[(acks[0].topic, acks[0].offset)]
    assert "TensionLevelChanged does not belong on topic" in reasons[(acks[1].topic, acks[1].offset)]
