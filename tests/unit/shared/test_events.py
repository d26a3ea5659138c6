"""The event contract: validation names the field and the problem; classification only rises."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from pydantic import ValidationError

from services.shared import events as ev
from services.shared.codec import PoisonRecord, decode, encode
from tests import factories as f


def errors_of(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}


def test_a_sensitive_category_defaults_to_official_sensitive():
    assert f.reported(category="domestic_abuse").classification is ev.Classification.OFFICIAL_SENSITIVE
    assert f.reported(category="noise").classification is ev.Classification.OFFICIAL


def test_no_client_can_lower_the_classification_of_a_sensitive_category():
    event = f.reported(category="safeguarding_child", classification="OFFICIAL")
    assert event.classification is ev.Classification.OFFICIAL_SENSITIVE


def test_a_client_may_raise_the_classification():
    assert f.reported(category="noise", classification="OFFICIAL-SENSITIVE").classification == "OFFICIAL-SENSITIVE"


def test_an_update_to_a_sensitive_category_raises_the_classification():
    update = f.fact(ev.IncidentUpdated, uuid.uuid4(), category="radicalisation_concern")
    assert update.classification is ev.Classification.OFFICIAL_SENSITIVE


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"severity": 6}, "severity", "less than or equal to 5"),
        ({"severity": 0}, "severity", "greater than or equal to 1"),
        ({"category": "arson"}, "category", "Input should be"),
        ({"occurred_at": datetime(2026, 1, 1, 12, 0)}, "occurred_at", "timezone"),
        ({"description": "x" * 4001}, "description", "at most 4000 characters"),
        ({"description": "   "}, "description", "at least 1 character"),
    ],
)
def test_a_bad_field_is_named_with_its_problem(overrides, field, message):
    with pytest.raises(ValidationError) as info:
        f.reported(**overrides)
    assert message in errors_of(info.value)[field]


def test_an_unknown_ward_is_refused_by_name():
    with pytest.raises(ValidationError) as info:
        ev.Location(ward_code="E05000001")
    assert "unknown ward code 'E05000001'" in errors_of(info.value)["ward_code"]


@pytest.mark.parametrize(("lat", "lon"), [(0.0, 0.0), (-0.02, 51.5), (91.0, 0.0)])
def test_coordinates_outside_sane_bounds_are_refused(lat, lon):
    with pytest.raises(ValidationError) as info:
        ev.Location(ward_code=f.BOW_EAST, lat=lat, lon=lon)
    assert set(errors_of(info.value)) & {"lat", "lon"}


def test_lat_without_lon_is_refused():
    with pytest.raises(ValidationError, match="lat and lon must be given together"):
        ev.Location(ward_code=f.BOW_EAST, lat=51.5)


def test_events_are_frozen_and_forbid_unknown_fields():
    event = f.reported()
    with pytest.raises(ValidationError):
        event.severity = 5  # type: ignore[misc]
    with pytest.raises(ValidationError) as info:
        f.reported(colour="red")
    assert "colour" in errors_of(info.value)


def test_an_update_must_change_something():
    with pytest.raises(ValidationError, match="at least one field"):
        f.fact(ev.IncidentUpdated, uuid.uuid4())


def test_an_incident_cannot_be_linked_to_itself():
    iid = uuid.uuid4()
    with pytest.raises(ValidationError, match="linked to itself"):
        f.fact(ev.IncidentLinked, iid, lead_incident_id=iid)


def test_status_rank_never_goes_backwards_from_resolved_to_dispatched():
    assert ev.IncidentStatus.DISPATCHED.rank < ev.IncidentStatus.RESOLVED.rank
    assert ev.IncidentStatus.RESOLVED.terminal and not ev.IncidentStatus.ON_SCENE.terminal


def test_derived_event_ids_are_deterministic():
    iid = uuid.uuid4()
    assert ev.derived_event_id(iid, 3, "raised") == ev.derived_event_id(iid, 3, "raised")
    assert ev.derived_event_id(iid, 3, "raised") != ev.derived_event_id(iid, 2, "raised")


def test_the_codec_round_trips_every_incident_fact_with_headers():
    iid = uuid.uuid4()
    facts = [
        f.reported(incident_id=iid, category="knife_crime", people=(ev.Person(role="victim", age=17),)),
        f.fact(ev.IncidentUpdated, iid, severity=4),
        f.fact(ev.IncidentAcknowledged, iid, acknowledged_by="op-17"),
        f.fact(ev.ResponderDispatched, iid, agency="police", callsign="TH-21", eta_minutes=6),
        f.fact(ev.ResponderArrived, iid, agency="police", callsign="TH-21"),
        f.fact(ev.IncidentStatusChanged, iid, status="contained"),
        f.fact(ev.IncidentLinked, iid, lead_incident_id=uuid.uuid4()),
        f.fact(ev.NoteAdded, iid, text="Crowd dispersing"),
        f.fact(ev.MajorIncidentDeclared, iid, declared_by="insp-4", agency="police"),
    ]
    for event in facts:
        encoded = encode(event)
        assert encoded.key == str(iid).encode()
        headers = dict(encoded.headers)
        assert headers["event_type"] == event.event_type.encode()
        assert headers["schema_version"] == str(event.schema_version).encode()
        assert headers["classification"] == event.classification.value.encode()
        assert headers["mode"] == b"live"
        assert decode(encoded.value) == event


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe not json", "Invalid JSON"),
        (b'{"event_type": "NoSuchEvent"}', "does not match any of the expected tags"),
        (None, "tombstone"),
    ],
)
def test_undecodable_records_are_poison_with_a_reason(value, reason):
    with pytest.raises(PoisonRecord, match=reason):
        decode(value)


def test_a_poison_reason_names_the_bad_field():
    event = f.reported()
    bad = encode(event).value.replace(b'"severity":2', b'"severity":9')
    with pytest.raises(PoisonRecord, match=r"^severity: Input should be less than or equal to 5$"):
        decode(bad)
