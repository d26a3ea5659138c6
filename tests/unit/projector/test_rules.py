"""The status rules as a pure fold, no I/O."""

from __future__ import annotations

from datetime import timedelta

from services.projector.rules import apply, as_row, fold
from services.shared import events as ev
from tests.factories import T0, fact, raised, reported


def test_a_report_opens_the_incident():
    report = reported(severity=3)
    state = fold([report])[report.incident_id]
    assert (state.status, state.severity, state.reported, state.version) == ("open", 3, True, 1)


def test_status_never_moves_backwards():
    report = reported()
    i = report.incident_id
    state = fold([
        report,
        fact(ev.IncidentStatusChanged, i, T0 + timedelta(minutes=30), status="resolved"),
        fact(ev.ResponderDispatched, i, T0 + timedelta(minutes=10), agency="police", callsign="P1"),
        fact(ev.IncidentAcknowledged, i, T0 + timedelta(minutes=5), acknowledged_by="op"),
    ])[i]
    assert state.status == "resolved"
    assert state.acknowledged_at == T0 + timedelta(minutes=5)
    assert state.version == 4


def test_a_higher_status_applies_even_when_it_occurred_earlier():
    report = reported()
    i = report.incident_id
    state = fold([
        report,
        fact(ev.IncidentAcknowledged, i, T0 + timedelta(minutes=5), acknowledged_by="op"),
        fact(ev.ResponderDispatched, i, T0 + timedelta(minutes=2), agency="police", callsign="P1"),
    ])[i]
    assert state.status == "dispatched"


def test_between_statuses_of_equal_rank_the_one_that_occurred_later_wins():
    report = reported()
    i = report.incident_id
    late = fact(ev.IncidentStatusChanged, i, T0 + timedelta(minutes=50), status="false_alarm")
    early = fact(ev.IncidentStatusChanged, i, T0 + timedelta(minutes=40), status="resolved")
    assert fold([report, late, early])[i].status == "false_alarm"
    assert fold([report, early, late])[i].status == "false_alarm"


def test_classification_never_falls():
    report = reported(classification="OFFICIAL-SENSITIVE")
    update = fact(ev.IncidentUpdated, report.incident_id, T0, severity=1)
    assert fold([report, update])[report.incident_id].classification == "OFFICIAL-SENSITIVE"


def test_a_repeated_event_id_is_folded_once():
    report = reported()
    note = fact(ev.NoteAdded, report.incident_id, T0, text="x")
    assert fold([report, note, note, report])[report.incident_id].version == 2


def test_a_late_report_fills_the_placeholder_without_undoing_a_later_update():
    report = reported(severity=2, hazards=("smoke",))
    i = report.incident_id
    update = fact(ev.IncidentUpdated, i, T0 + timedelta(minutes=3), severity=5)
    placeholder = apply(None, update)
    assert (placeholder.reported, placeholder.severity, placeholder.category) == (False, 5, None)
    state = apply(placeholder, report)
    assert (state.reported, state.severity, state.category, state.hazards) == (True, 5, "antisocial_behaviour", ["smoke"])
    assert state.occurred_at == T0 and state.last_event_at == T0 + timedelta(minutes=3)


def test_a_linked_duplicate_points_to_its_lead():
    lead, dup = reported(), reported()
    link = fact(ev.IncidentLinked, dup.incident_id, T0, lead_incident_id=lead.incident_id)
    states = fold([lead, dup, link])
    assert states[dup.incident_id].lead_incident_id == lead.incident_id
    assert states[lead.incident_id].lead_incident_id is None


def test_apply_leaves_its_input_unchanged():
    report = reported()
    before = fold([report])[report.incident_id]
    after = apply(before, fact(ev.IncidentAcknowledged, report.incident_id, T0, acknowledged_by="op"))
    assert (before.status, after.status) == ("open", "acknowledged")


def test_the_row_is_the_same_wherever_a_derived_fact_falls_among_the_incidents_own():
    """The rebuild reads the escalation topic beside the incidents topic in whatever order the fetches
    return, as a live projector behind on one topic does: the folded row must not depend on it."""
    report = reported(agencies_required=("police", "ambulance", "council", "fire"), hazards=("smoke",))
    i = report.incident_id
    own = [
        report,
        fact(ev.IncidentUpdated, i, T0 + timedelta(minutes=1), severity=5),
        fact(ev.IncidentAcknowledged, i, T0 + timedelta(minutes=2), acknowledged_by="op"),
    ]
    derived = raised(i, level=2)
    rows = set()
    for at in range(len(own) + 1):
        state = fold([*own[:at], derived, *own[at:]])[i]
        rows.add(repr(as_row(state)))
    assert len(rows) == 1
    assert state.agencies_required == ["council", "police", "fire", "ambulance"]
