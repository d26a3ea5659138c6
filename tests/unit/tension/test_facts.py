"""The narrow decode of incident facts: skip on the header, read only what tension needs,
dead-letter what it cannot read with the field named."""

from __future__ import annotations

import orjson
import pytest

from services.shared import events as ev
from services.shared.codec import PoisonRecord, encode, header
from services.tension.facts import Reported, Updated, read_fact
from tests.factories import WHITECHAPEL, fact, reported


def _value(event: ev.Event, **changes) -> bytes:
    data = orjson.loads(encode(event).value)
    data.update(changes)
    return orjson.dumps(data)


def test_a_report_reads_the_same_fields_as_the_full_decode():
    event = reported(category="hate_incident", police_grading="evidenced", location=ev.Location(ward_code=WHITECHAPEL))
    encoded = encode(event)
    got = read_fact(encoded.value, encoded.headers)
    assert isinstance(got, Reported)
    assert (got.incident_id, got.occurred_at, got.mode, got.category, got.location.ward_code, got.police_grading) == (
        event.incident_id, event.occurred_at, event.mode, event.category, WHITECHAPEL, event.police_grading)


def test_a_fact_tension_does_not_read_is_skipped_on_its_header_without_decoding():
    encoded = encode(fact(ev.IncidentAcknowledged, reported().incident_id, acknowledged_by="op-1"))
    assert header(encoded.headers, "event_type") == "IncidentAcknowledged"
    assert read_fact(b"{not json at all", encoded.headers) is None


def test_a_record_without_headers_is_read_from_its_value():
    event = reported()
    assert isinstance(read_fact(encode(event).value, None), Reported)
    assert read_fact(encode(fact(ev.NoteAdded, event.incident_id, text="checked")).value, ()) is None


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"event_type": "Nope"}', "event_type"),
        (None, "tombstone"),
    ],
)
def test_an_unreadable_record_without_headers_is_poison(value, named):
    with pytest.raises(PoisonRecord, match=named):
        read_fact(value, None)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"location": {"ward_code": "E05999999"}}, "location.ward_code: .*unknown ward code"),
        ({"category": "jaywalking"}, "category"),
        ({"occurred_at": "2026-11-20T21:30:00"}, "occurred_at"),
        ({"incident_id": "not-a-uuid"}, "incident_id"),
        ({"mode": "rehearsal"}, "mode"),
    ],
)
def test_a_report_with_a_field_tension_needs_missing_or_invalid_names_the_field(changes, named):
    encoded = encode(reported())
    with pytest.raises(PoisonRecord, match=named):
        read_fact(_value(reported(), **changes), encoded.headers)


def test_a_report_missing_its_category_names_the_field():
    data = orjson.loads(encode(reported()).value)
    del data["category"]
    with pytest.raises(PoisonRecord, match="category: Field required"):
        read_fact(orjson.dumps(data), encode(reported()).headers)


def test_a_derived_event_on_the_incidents_topic_is_poison():
    headers = [("event_type", b"TensionLevelChanged")]
    with pytest.raises(PoisonRecord, match="does not belong on the incidents topic"):
        read_fact(b"{}", headers)


def test_the_narrow_views_only_name_fields_of_the_full_events():
    for narrow, full in ((Reported, ev.IncidentReported), (Updated, ev.IncidentUpdated)):
        assert set(narrow.model_fields) <= set(full.model_fields)
