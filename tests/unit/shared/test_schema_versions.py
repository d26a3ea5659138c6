"""ResponderDispatched schema_version 2 (expected_arrival_at replaces eta_minutes): why it is a
new version, how both versions are produced side by side, and how readers take either."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.shared import events as ev
from services.shared.codec import NEWER_VERSION_HEADER, decode, editions, encode, header, superseded
from services.shared.compat import check
from services.shared.schemas import RELEASED_DIR, consumer_schema
from tests import factories as f


def _dispatched(**fields) -> ev.ResponderDispatched:
    fields = {"agency": "fire", "callsign": "F21", **fields}
    return f.fact(ev.ResponderDispatched, uuid.uuid4(), **fields)


def test_changing_version_1_in_place_would_break_its_consumers_so_it_is_a_new_version():
    released = json.loads((RELEASED_DIR / "ResponderDispatched.v1.json").read_text())
    in_place = consumer_schema(ev.ResponderDispatched)
    problems = [str(b) for b in check("ResponderDispatched.v1.json", released, in_place)]
    assert any("field `eta_minutes`: removed" in p for p in problems), problems
    assert any("field `schema_version`: may now be 2" in p for p in problems), problems


def test_a_version_1_record_is_read_as_version_2_with_the_arrival_time():
    v1 = ev.ResponderDispatchedV1.of(_dispatched(expected_arrival_at=f.T0 + timedelta(minutes=7)))
    event = decode(encode(v1).value)
    assert isinstance(event, ev.ResponderDispatched) and event.schema_version == 2
    assert event.expected_arrival_at == f.T0 + timedelta(minutes=7)
    assert event.event_id == v1.event_id


def test_a_body_with_eta_minutes_and_no_version_is_version_1():
    event = _dispatched(eta_minutes=12)
    assert event.schema_version == 2 and event.expected_arrival_at == event.occurred_at + timedelta(minutes=12)
    assert _dispatched().expected_arrival_at is None


def test_version_2_with_eta_minutes_is_rejected_naming_the_field():
    with pytest.raises(ValidationError, match="eta_minutes"):
        _dispatched(schema_version=2, eta_minutes=3)


def test_version_2_is_written_as_version_1_in_whole_minutes_within_its_bounds():
    assert ev.ResponderDispatchedV1.of(_dispatched(expected_arrival_at=f.T0 + timedelta(seconds=150))).eta_minutes == 2
    assert ev.ResponderDispatchedV1.of(_dispatched(expected_arrival_at=f.T0 + timedelta(days=1))).eta_minutes == 600
    assert ev.ResponderDispatchedV1.of(_dispatched(expected_arrival_at=f.T0 - timedelta(minutes=5))).eta_minutes == 0
    assert ev.ResponderDispatchedV1.of(_dispatched()).eta_minutes is None


def test_during_the_transition_both_versions_are_produced_newest_first_with_one_event_id():
    event = _dispatched(expected_arrival_at=f.T0 + timedelta(minutes=9))
    first, second = editions(event)
    assert header(first.headers, "schema_version") == "2" and header(first.headers, NEWER_VERSION_HEADER) is None
    assert header(second.headers, "schema_version") == "1" and header(second.headers, NEWER_VERSION_HEADER) == "2"
    assert first.key == second.key
    one, two = json.loads(first.value), json.loads(second.value)
    assert one["event_id"] == two["event_id"] and two["eta_minutes"] == 9 and "eta_minutes" not in one
    assert superseded(second.headers) and not superseded(first.headers)


def test_a_version_1_record_from_before_the_transition_is_not_skipped():
    historical = encode(ev.ResponderDispatchedV1.of(_dispatched()))
    assert not superseded(historical.headers)


def test_a_copy_marked_for_a_version_muster_does_not_read_yet_is_not_skipped():
    record = editions(_dispatched())[1]
    headers = [(k, v) for k, v in record.headers if k != NEWER_VERSION_HEADER] + [(NEWER_VERSION_HEADER, b"3")]
    assert not superseded(headers)


def test_every_other_event_is_one_record():
    assert len(editions(f.reported())) == 1
