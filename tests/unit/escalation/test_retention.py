"""A finished incident is kept compactly for the retention time, then released (retention.py)."""

import json

import pytest

from services.escalation import batch
from services.escalation.retention import KEPT, due_releases, finished, release_at, releasable, settle
from services.escalation.state import fold, record
from services.shared import events as ev
from tests.unit.escalation.helpers import DEFAULT_RULES, POPLAR, T0, fact, poplar_fire, reported, timedelta

UNPLACED = ev.Location(ward_code=POPLAR)  # no coordinates: nothing to correlate, escalates at once

pytestmark = pytest.mark.unit

NOW = T0 + timedelta(seconds=10)
KEEP = timedelta(hours=1)


def _run(facts, known=None, now=NOW, partition=0, first_offset=0):
    known = dict(known or {})
    inputs = [batch.Input(str(f.incident_id), lambda s, f=f, o=o: fold(s, f, partition, o), o,
                          f if isinstance(f, ev.IncidentReported) else None)
              for o, f in enumerate(facts, start=first_offset)]
    return batch.process(inputs, known.get, DEFAULT_RULES, partition=partition, sender="s@example", now=now)


def test_a_resolved_incident_is_compacted_once_stood_down_keeping_what_late_facts_need():
    fire = poplar_fire(location=UNPLACED)
    resolved = fact(ev.IncidentStatusChanged, fire.incident_id, T0 + timedelta(seconds=1), status="resolved")
    out = _run([fire, resolved])
    assert [d.event.event_type for d in out.produced if d.agency is None] == ["EscalationRaised", "EscalationStoodDown"]
    s = out.states[str(fire.incident_id)]
    assert finished(s) and s.closed_at == NOW
    assert s.rule_set is None and s.location is None and s.hazards == () and s.casualties == ev.Casualties()
    assert set(s.raised) == {3} and s.stood_down and s.offset == 1 and s.partition == 0
    assert set(json.loads(record(s))) <= KEPT  # its record: what it keeps, nothing else


def test_an_open_incident_is_never_compacted_nor_released():
    fire = poplar_fire(location=UNPLACED)
    s = _run([fire]).states[str(fire.incident_id)]
    assert not finished(s) and s.closed_at is None and s.rule_set is not None
    assert release_at(s, KEEP) is None and not releasable(s, NOW + timedelta(days=365), KEEP)


def test_released_only_after_the_retention_and_late_facts_do_not_extend_it():
    fire = poplar_fire(location=UNPLACED)
    resolved = fact(ev.IncidentStatusChanged, fire.incident_id, T0 + timedelta(seconds=1), status="resolved")
    closed = _run([fire, resolved]).states
    later = NOW + timedelta(minutes=30)
    note = fact(ev.NoteAdded, fire.incident_id, later, text="after the end")
    out = _run([note], known=closed, now=later, first_offset=2)
    s = out.states[str(fire.incident_id)]
    assert out.produced == [] and s.offset == 2 and s.closed_at == NOW  # absorbed, retention unchanged
    assert not releasable(s, NOW + KEEP - timedelta(seconds=1), KEEP)
    assert releasable(s, NOW + KEEP, KEEP)


def test_a_late_update_of_a_closed_incident_raises_nothing_and_stays_compact():
    fire = poplar_fire(severity=3, casualties=ev.Casualties(), location=UNPLACED)
    closed = _run([fire, fact(ev.IncidentStatusChanged, fire.incident_id, T0, status="closed")]).states
    worse = fact(ev.IncidentUpdated, fire.incident_id, T0 + timedelta(seconds=5), severity=5,
                 casualties=ev.Casualties(fatalities=3))
    out = _run([worse], known=closed, first_offset=2)
    s = out.states[str(fire.incident_id)]
    assert out.produced == [] and s.casualties == ev.Casualties() and finished(s)


def test_a_fact_for_a_released_incident_makes_a_stub_that_is_finished_and_released_in_turn():
    incident = reported()
    note = fact(ev.NoteAdded, incident.incident_id, T0, text="late")
    out = _run([note])  # nothing known: the incident was released (or its report never came)
    s = out.states[str(incident.incident_id)]
    assert s.category is None and finished(s) and s.closed_at == NOW and out.produced == []
    assert releasable(s, NOW + KEEP, KEEP)


def test_a_stub_that_then_gets_its_report_is_open_again():
    incident = reported(category="fire", severity=5, location=UNPLACED)
    note = fact(ev.NoteAdded, incident.incident_id, T0, text="first")
    stub = _run([note]).states
    out = _run([incident], known=stub, first_offset=1)
    s = out.states[str(incident.incident_id)]
    assert not finished(s) and s.closed_at is None and release_at(s, KEEP) is None
    assert [d.event.event_type for d in out.produced if d.agency is None] == ["EscalationRaised"]


def test_a_resolved_incident_that_never_escalated_is_finished_at_once():
    minor = reported(severity=1)
    out = _run([minor, fact(ev.IncidentStatusChanged, minor.incident_id, T0, status="unfounded")])
    s = out.states[str(minor.incident_id)]
    assert out.produced == [] and finished(s) and s.closed_at == NOW


def test_settle_is_idempotent_on_a_compact_state():
    fire = poplar_fire(location=UNPLACED)
    s = _run([fire, fact(ev.IncidentStatusChanged, fire.incident_id, T0, status="resolved")]).states
    compact = s[str(fire.incident_id)]
    assert settle(compact, NOW + KEEP) is compact


def test_a_release_notice_is_due_once_and_not_again_while_it_is_on_its_way():
    expiry = {b"a": (NOW, 1), b"b": (NOW + KEEP, 2)}
    assert due_releases(expiry, {}, NOW) == [(b"a", 1)]
    assert due_releases(expiry, {b"a": 0.0}, NOW + KEEP) == [(b"b", 2)]  # a: already sent
