"""Dead letters keep no people and no free text (pure)."""

from __future__ import annotations

import base64

import orjson
import pydantic
import pytest

from services.shared import events as ev
from services.shared.codec import encode
from services.shared.scrub import REMOVED, scrub_error, scrub_value
from tests.factories import reported

NAME = "Joanna Quigley-Smith"


def letter_of(value: bytes, error="bad") -> ev.DeadLetter:
    return ev.DeadLetter.of(service="projector", topic="t", partition=0, offset=1, error=error, key=b"k",
                            value=value, headers=[("event_type", b"IncidentReported")])


def test_a_dead_lettered_report_keeps_its_envelope_but_no_person_or_free_text():
    report = reported(description=f"{NAME} seen at the bus stop",
                      people=(ev.Person(role=ev.PersonRole.VICTIM, name=NAME, age=17, description="red coat"),))
    letter = letter_of(encode(report).value)
    raw = encode(letter).value
    assert NAME.encode() not in raw and b"red coat" not in raw and b"bus stop" not in raw
    kept = orjson.loads(base64.b64decode(letter.value_b64))
    assert kept["incident_id"] == str(report.incident_id)
    assert kept["event_type"] == "IncidentReported" and kept["category"] == report.category
    assert kept["location"]["ward_code"] == report.location.ward_code
    assert kept["people"] == REMOVED and kept["description"] == REMOVED
    assert {"people", "description"} <= set(letter.removed)


def test_a_value_that_is_not_a_json_object_is_dropped_whole():
    letter = letter_of(f"not json {NAME}".encode())
    assert letter.value_b64 is None and letter.removed == ("$",)
    assert scrub_value(b'["a list", "of text"]') == (None, ["$"])


def test_free_text_under_a_structured_field_is_removed_too():
    kept, removed = scrub_value(orjson.dumps({"category": f"{NAME} again", "severity": 3}))
    assert orjson.loads(kept) == {"category": REMOVED, "severity": 3}
    assert removed == ["category"]


def test_a_validation_error_names_the_field_and_the_problem_but_not_the_value():
    with pytest.raises(pydantic.ValidationError) as caught:
        ev.Person(role=ev.PersonRole.VICTIM, name=NAME * 20, age=300)
    text = scrub_error(caught.value)
    assert NAME not in text
    assert "name" in text and "age" in text
    assert NAME not in letter_of(b"{}", caught.value).error


def test_a_plain_error_loses_what_it_quotes():
    assert NAME not in scrub_error(ValueError(f"cannot store '{NAME}' in the status store"))
    assert "cannot store" in scrub_error(ValueError(f"cannot store '{NAME}'"))
