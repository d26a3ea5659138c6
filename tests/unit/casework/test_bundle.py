"""The evidence bundle: a property's chronology from the log, byte-identical on replay."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from services.casework import bundle
from services.casework.config import load_config
from services.shared import events as ev

CONFIG = load_config()
UPRN = "100023336956"
KEY = "c" * 40
T0 = datetime(2026, 5, 1, 21, 30, tzinfo=timezone.utc)


def src(agency=ev.Agency.COUNCIL):
    return ev.Source(kind=ev.SourceKind.CONTROL_ROOM, id="op-1", agency=agency)


def history():
    a, b, c = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
    loc = ev.Location(ward_code="E05009317", address="Flat 3, 1 Example Street")
    return [
        ev.IncidentReported(
            event_id=uuid.UUID(int=11), incident_id=a, occurred_at=T0, recorded_at=T0, source=src(),
            category=ev.Category.DRUGS, severity=2, location=loc, description="Dealing from the <front> door",
            uprn=UPRN, complainant_key=KEY, people=(ev.Person(role=ev.PersonRole.SUBJECT, name="Jo Bloggs"),),
        ),
        ev.ComplaintRecorded(
            event_id=uuid.UUID(int=12), incident_id=a, occurred_at=T0 + timedelta(days=1),
            recorded_at=T0 + timedelta(days=1), source=src(ev.Agency.POLICE), complainant_key=KEY,
            behaviour_at=T0, category=ev.Category.DRUGS, agency=ev.Agency.POLICE, uprn=UPRN, reference="CAD-1",
        ),
        ev.IncidentStatusChanged(
            event_id=uuid.UUID(int=13), incident_id=a, occurred_at=T0 + timedelta(hours=2),
            recorded_at=T0 + timedelta(hours=2), source=src(), status=ev.IncidentStatus.RESOLVED,
        ),
        ev.IncidentReported(
            event_id=uuid.UUID(int=14), incident_id=b, occurred_at=T0 + timedelta(days=2),
            recorded_at=T0 + timedelta(days=2), source=src(), category=ev.Category.CRIMINAL_EXPLOITATION, severity=3,
            location=loc, description="Occupant may be cuckooed", uprn=UPRN,
        ),
        ev.ClosureNoticeIssued(
            event_id=uuid.UUID(int=15), incident_id=c, occurred_at=T0 + timedelta(days=3),
            recorded_at=T0 + timedelta(days=3), source=src(), uprn=UPRN, agency=ev.Agency.COUNCIL, duration_hours=48,
        ),
        ev.IncidentReported(  # another property: not in the bundle
            event_id=uuid.UUID(int=16), incident_id=uuid.UUID(int=4), occurred_at=T0, recorded_at=T0, source=src(),
            category=ev.Category.NOISE, severity=1, location=loc, description="Elsewhere", uprn="999",
        ),
    ]


def test_the_bundle_lists_the_property_in_order_without_people_or_keys():
    rows, withheld = bundle.chronology(history(), UPRN, CONFIG)
    assert [r.what for r in rows] == ["Report", "Status", "Complaint", "Closure notice issued"]
    assert withheld == 1
    html = bundle.render(UPRN, rows, withheld)
    assert "Jo Bloggs" not in html and KEY not in html and "cuckooed" not in html and "Elsewhere" not in html
    assert "Dealing from the &lt;front&gt; door" in html  # escaped, never markup
    assert "withheld" in html and "Fri 01 May 2026 22:30" in html  # London time (BST)


def test_the_bundle_is_byte_identical_for_the_same_log_whatever_the_arrival_order():
    events = history()
    first = bundle.render(UPRN, *bundle.chronology(events, UPRN, CONFIG))
    again = bundle.render(UPRN, *bundle.chronology(list(reversed(events)), UPRN, CONFIG))
    assert first == again


def test_exercise_facts_stay_out_of_a_live_bundle():
    exercise = [e.model_copy(update={"mode": ev.Mode.EXERCISE}) for e in history()]
    rows, _ = bundle.chronology(exercise, UPRN, CONFIG)
    assert rows == []
