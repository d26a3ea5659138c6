"""The status rules hold in the store, against the real broker and database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.shared import events as ev
from tests.factories import POPLAR, T0, fact, reported
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _applied(world, n: int, what: str = "facts applied") -> None:
    await wait_until(lambda: _count(world, n), timeout=60, what=what)


async def _count(world, n: int) -> bool:
    return await world.fetchval("select count(*) from incident_events") >= n


async def _incident(world, incident_id):
    rows = await world.fetch("select * from incidents where incident_id = $1", incident_id)
    return rows[0] if rows else None


async def test_a_report_creates_the_incident_with_its_details(world, running):
    report = reported(location=ev.Location(ward_code=POPLAR, lat=51.51, lon=-0.01), severity=4,
                      hazards=("smoke",), agencies_required=("fire",))
    await world.publish(report)
    running()
    await _applied(world, 1)
    row = await _incident(world, report.incident_id)
    assert (row["reported"], row["status"], row["ward_code"], row["severity"], row["category"]) == (
        True, "open", POPLAR, 4, "antisocial_behaviour")
    assert list(row["hazards"]) == ["smoke"] and list(row["agencies_required"]) == ["fire"]
    assert row["occurred_at"] == T0 and row["version"] == 1


async def test_a_late_dispatched_after_resolved_enters_the_timeline_but_does_not_reopen(world, running):
    report = reported()
    i = report.incident_id
    resolved = fact(ev.IncidentStatusChanged, i, T0 + timedelta(minutes=30), status="resolved")
    late = fact(ev.ResponderDispatched, i, T0 + timedelta(minutes=10), agency="police", callsign="BOW-21")
    await world.publish(report, resolved, late)
    running()
    await _applied(world, 3)
    row = await _incident(world, i)
    assert row["status"] == "resolved"
    assert row["agencies_dispatched"] == ["police"]
    timeline = await world.fetch(
        "select event_type from incident_events where incident_id = $1 order by occurred_at, event_id", i)
    assert [r[0] for r in timeline] == ["IncidentReported", "ResponderDispatched", "IncidentStatusChanged"]


async def test_the_same_event_id_twice_is_applied_once(world, running):
    report = reported()
    note = fact(ev.NoteAdded, report.incident_id, T0 + timedelta(minutes=1), text="Caller rang back")
    await world.publish(report, note, note, report)
    running()
    await wait_until(lambda: _offsets_at(world, 4), timeout=60, what="all four records read")
    assert await world.fetchval("select count(*) from incident_events") == 2
    assert (await _incident(world, report.incident_id))["version"] == 2


async def _offsets_at(world, n: int) -> bool:
    return (await world.fetchval("select coalesce(sum(next_offset), 0) from projector_offsets")) >= n


async def test_classification_only_rises(world, running):
    report = reported(classification="OFFICIAL-SENSITIVE")
    update = fact(ev.IncidentUpdated, report.incident_id, T0 + timedelta(minutes=1), severity=3,
                  classification="OFFICIAL")
    await world.publish(report, update)
    running()
    await _applied(world, 2)
    row = await _incident(world, report.incident_id)
    assert (row["classification"], row["severity"]) == ("OFFICIAL-SENSITIVE", 3)


async def test_a_linked_duplicate_points_to_its_lead(world, running):
    lead, duplicate = reported(), reported()
    link = fact(ev.IncidentLinked, duplicate.incident_id, T0 + timedelta(minutes=2), lead_incident_id=lead.incident_id)
    await world.publish(lead, duplicate, link)
    running()
    await _applied(world, 3)
    assert (await _incident(world, duplicate.incident_id))["lead_incident_id"] == lead.incident_id
    assert (await _incident(world, lead.incident_id))["lead_incident_id"] is None


async def test_facts_before_their_report_make_a_placeholder_the_report_fills_in(world, running):
    report = reported(severity=2)
    i = report.incident_id
    ack = fact(ev.IncidentAcknowledged, i, T0 + timedelta(minutes=1), acknowledged_by="op-3")
    update = fact(ev.IncidentUpdated, i, T0 + timedelta(minutes=2), severity=5)
    await world.publish(ack, update)
    projector = running()
    await _applied(world, 2)
    placeholder = await _incident(world, i)
    assert (placeholder["reported"], placeholder["status"], placeholder["severity"]) == (False, "acknowledged", 5)
    await world.publish(report)
    await _applied(world, 3)
    row = await _incident(world, i)
    assert (row["reported"], row["status"], row["severity"], row["ward_code"]) == (True, "acknowledged", 5, report.location.ward_code)
    assert row["acknowledged_at"] == T0 + timedelta(minutes=1) and row["occurred_at"] == T0
    assert projector.batches >= 2


async def test_many_facts_of_one_incident_in_one_batch_fold_to_one_row(world, running):
    report = reported()
    i = report.incident_id
    steps = [
        fact(ev.IncidentAcknowledged, i, T0 + timedelta(minutes=1), acknowledged_by="op-3"),
        fact(ev.ResponderDispatched, i, T0 + timedelta(minutes=2), agency="police", callsign="P1"),
        fact(ev.ResponderDispatched, i, T0 + timedelta(minutes=3), agency="ambulance", callsign="A1"),
        fact(ev.ResponderArrived, i, T0 + timedelta(minutes=9), agency="police", callsign="P1"),
        fact(ev.IncidentStatusChanged, i, T0 + timedelta(minutes=40), status="contained"),
    ]
    await world.publish(report, *steps)
    running()
    await _applied(world, 6)
    row = await _incident(world, i)
    assert (row["status"], row["version"]) == ("contained", 6)
    assert row["agencies_dispatched"] == ["ambulance", "police"] and row["agencies_on_scene"] == ["police"]
    assert row["last_event_at"] == T0 + timedelta(minutes=40)
