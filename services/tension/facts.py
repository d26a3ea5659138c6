"""The few fields of an incident fact the tension processor reads, and nothing else.

Decoding every fact in full (people, casualties, free text...) cost more than all the
scoring. Here a record is skipped on its `event_type` header (set by codec.encode on every
record) unless tension counts that type, and the rest is decoded into a narrow view
(`extra="ignore"`) with the same field types as services.shared.events, so a record
tension cannot read still goes to the dead-letter topic with the field named. Fields
tension does not read are left to the services that read them (the projector
dead-letters an otherwise broken fact).
"""

from __future__ import annotations

from typing import Literal

import orjson

from services.shared.codec import PoisonRecord, header
from services.shared.events import INCIDENT_FACT_TYPES, Category, KnownWardCode, PoliceGrading
from services.shared.narrow import Narrow, NarrowFact, reader


class Place(Narrow):
    ward_code: KnownWardCode


class Reported(NarrowFact):
    """IncidentReported, as tension reads it."""

    event_type: Literal["IncidentReported"]
    category: Category
    location: Place
    police_grading: PoliceGrading | None = None


class Updated(NarrowFact):
    """IncidentUpdated, as tension reads it: only a changed category or grading moves weight."""

    event_type: Literal["IncidentUpdated"]
    category: Category | None = None
    location: Place | None = None
    police_grading: PoliceGrading | None = None


TensionFact = Reported | Updated
COUNTED = frozenset({"IncidentReported", "IncidentUpdated"})
_read = reader(Reported, Updated)


def read_fact(value: bytes | None, headers) -> TensionFact | None:  # Kafka headers
    """The fact tension counts, None for a fact it does not read; PoisonRecord when unreadable."""
    kind = header(headers, "event_type")
    if kind is None:  # a producer that set no headers: the value says what it is
        kind = _event_type_in(value)
    if kind not in INCIDENT_FACT_TYPES:
        raise PoisonRecord(f"event_type: {kind!r} does not belong on the incidents topic")
    if kind not in COUNTED:
        return None
    return _read(value)


def _event_type_in(value: bytes | None) -> object:
    if value is None:
        raise PoisonRecord("empty record value (tombstone) on an event topic")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PoisonRecord(f"(record): invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PoisonRecord("(record): not a JSON object")
    return data.get("event_type")
