"""A repeated IncidentReported, or a fact whose mode is not its incident's, that reached the
topic some other way than intake: the projector keeps it out of the store, counts it and
dead-letters it with the reason (services/shared/admission.py); the rest applies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.projector import metrics
from services.shared import events as ev
from tests.factories import T0, fact, reported, source
from tests.integration.projector.test_offsets_and_failures import _offsets_cover, _read_all, decode_letter
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _ignored(reason: str) -> float:
    return metrics.IGNORED.labels(reason)._value.get()


async def test_a_second_report_and_a_fact_of_another_mode_are_ignored_and_dead_lettered(world, running):
    first = reported(category=ev.Category.NOISE, severity=2)
    takeover = reported(incident_id=first.incident_id, category=ev.Category.FIRE, severity=5, mode=ev.Mode.EXERCISE,
                        source=source(kind="police", id="pc-9", agency="police"), description="re-reported")
    other_mode = fact(ev.IncidentStatusChanged, first.incident_id, T0 + timedelta(minutes=2),
                      status=ev.IncidentStatus.RESOLVED, mode=ev.Mode.EXERCISE)
    legit = fact(ev.IncidentAcknowledged, first.incident_id, T0 + timedelta(minutes=3), acknowledged_by="op-17")
    before = _ignored("repeated_report"), _ignored("mode_mismatch")
    acks = await world.publish(first, takeover, other_mode, legit)
    running()
    await wait_until(lambda: _offsets_cover(world, acks), timeout=60, what="every offset stored")
    row = (await world.fetch("select * from incidents where incident_id = $1", first.incident_id))[0]
    assert (row["category"], row["severity"], row["mode"], row["source_kind"]) == ("noise", 2, "live", "control_room")
    assert row["status"] == "acknowledged" and row["description"] == first.description
    types = [r["event_type"] for r in await world.fetch(
        "select event_type from incident_events where incident_id = $1 order by occurred_at", first.incident_id)]
    assert types == ["IncidentReported", "IncidentAcknowledged"]
    letters = {x["source_offset"]: x for x in (decode_letter(r.value) for r in
                                               await _read_all(world.settings, world.catalog.name("deadletter")))}
    assert set(letters) == {acks[1].offset, acks[2].offset}
    assert letters[acks[1].offset]["error"].startswith("repeated_report")
    assert letters[acks[2].offset]["error"].startswith("mode_mismatch")
    assert (_ignored("repeated_report"), _ignored("mode_mismatch")) == (before[0] + 1, before[1] + 1)


async def test_a_redelivered_report_is_a_duplicate_not_a_repeat(world, running):
    first = reported()
    acks = await world.publish(first, first)
    running()
    await wait_until(lambda: _offsets_cover(world, acks), timeout=60, what="every offset stored")
    assert await world.fetchval("select count(*) from incident_events") == 1
    assert await _read_all(world.settings, world.catalog.name("deadletter")) == []
