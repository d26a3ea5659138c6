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


async def test_a_fact_naming_people_in_the_clear_is_ignored_and_dead_lettered_without_them(world, running):
    """Intake seals every person into people_sealed; a fact with `people` in the clear came some other
    way. Stored, the name was in the clear and outlived the incident's erasure (red-team probe,
    2026-12-06). The projector keeps it out, counts it and dead-letters it (scrubbed); the rest applies."""
    name = "Blorptastic Vexhammer"
    first = reported(category=ev.Category.NOISE, severity=2)
    clear = fact(ev.IncidentUpdated, first.incident_id, T0 + timedelta(minutes=1), severity=3,
                 people=(ev.Person(role="witness", name=name),))
    clear_report = reported(people=(ev.Person(role="victim", name=name),))
    legit = fact(ev.IncidentAcknowledged, first.incident_id, T0 + timedelta(minutes=3), acknowledged_by="op-17")
    before = _ignored("people_in_clear")
    acks = await world.publish(first, clear, clear_report, legit)
    running()
    await wait_until(lambda: _offsets_cover(world, acks), timeout=60, what="every offset stored")
    row = (await world.fetch("select * from incidents where incident_id = $1", first.incident_id))[0]
    assert (row["severity"], row["status"]) == (2, "acknowledged")
    assert await world.fetch("select 1 from incidents where incident_id = $1", clear_report.incident_id) == []
    stored = await world.fetchval("select count(*) from incident_events where payload::text like $1", f"%{name}%")
    people = await world.fetchval("select count(*) from incidents where people::text like $1", f"%{name}%")
    assert (stored, people) == (0, 0)
    raw = await _read_all(world.settings, world.catalog.name("deadletter"))
    letters = {x["source_offset"]: x for x in (decode_letter(r.value) for r in raw)}
    assert set(letters) == {acks[1].offset, acks[2].offset}
    assert all(x["error"].startswith("people_in_clear") for x in letters.values())
    assert all(name.encode() not in r.value for r in raw)
    assert _ignored("people_in_clear") == before + 2
