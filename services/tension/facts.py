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

import uuid
from typing import Annotated, Union

from pydantic import Field, TypeAdapter

from services.shared.codec import PoisonRecord, decode_as, header
from services.shared.events import (
    CALENDAR_FACTS,
    INCIDENT_FACT_TYPES,
    Category,
    Classification,
    IncidentStatus,
    KnownWardCode,
    PlannedEventCancelled,
    PlannedEventRegistered,
    PoliceGrading,
    TensionSilenced,
)
from services.shared.narrow import Narrow, NarrowFact, reader


class Place(Narrow):
    ward_code: KnownWardCode


class Reported(NarrowFact):
    """IncidentReported, as tension reads it."""

    event_type: Literal["IncidentReported"]
    classification: Classification = Classification.OFFICIAL
    category: Category
    location: Place
    police_grading: PoliceGrading | None = None


class Updated(NarrowFact):
    """IncidentUpdated, as tension reads it: only a changed category or grading moves weight."""

    event_type: Literal["IncidentUpdated"]
    classification: Classification = Classification.OFFICIAL
    category: Category | None = None
    location: Place | None = None
    police_grading: PoliceGrading | None = None


class Linked(NarrowFact):
    """IncidentLinked, as tension reads it: the duplicate's weight goes (it counts as its lead)."""

    event_type: Literal["IncidentLinked"]
    lead_incident_id: uuid.UUID


class StatusChanged(NarrowFact):
    """IncidentStatusChanged, as tension reads it: unfounded and false alarm withdraw the weight."""

    event_type: Literal["IncidentStatusChanged"]
    status: IncidentStatus


TensionFact = Reported | Updated | Linked | StatusChanged
COUNTED = frozenset({"IncidentReported", "IncidentUpdated", "IncidentLinked", "IncidentStatusChanged"})
_read = reader(Reported, Updated, Linked, StatusChanged)
CALENDAR_TYPES = frozenset(cls.model_fields["event_type"].default for cls in CALENDAR_FACTS)
CalendarFact = Union[PlannedEventRegistered, PlannedEventCancelled, TensionSilenced]
_CALENDAR: TypeAdapter[CalendarFact] = TypeAdapter(Annotated[CalendarFact, Field(discriminator="event_type")])


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


def read_calendar_fact(value: bytes | None, headers) -> CalendarFact:  # Kafka headers
    """A planned event or a silence (every field checked, wards against the borough's list: they
    are few); PoisonRecord naming the field when unreadable."""
    kind = header(headers, "event_type")
    if kind is None:
        kind = _event_type_in(value)
    if kind not in CALENDAR_TYPES:
        raise PoisonRecord(f"event_type: {kind!r} does not belong on the tension calendar topic")
    return decode_as(_CALENDAR, value)


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
