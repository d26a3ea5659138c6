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

import uuid
from typing import Annotated, Literal, Union

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from services.shared.codec import PoisonRecord, decode_as, header
from services.shared.events import (
    CALENDAR_FACTS,
    INCIDENT_FACTS,
    Category,
    Classification,
    IncidentStatus,
    Mode,
    PlannedEventCancelled,
    PlannedEventRegistered,
    PoliceGrading,
    TensionSilenced,
    WardCode,
)
from services.shared.wards import wards

INCIDENT_FACT_TYPES = frozenset(cls.model_fields["event_type"].default for cls in INCIDENT_FACTS)


def _known_ward(code: str) -> str:
    if code not in wards():
        raise ValueError(f"unknown ward code {code!r}: not in the borough's ward list")
    return code


class _Narrow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Place(_Narrow):
    ward_code: Annotated[WardCode, AfterValidator(_known_ward)]


class Reported(_Narrow):
    """IncidentReported, as tension reads it."""

    event_type: Literal["IncidentReported"]
    incident_id: uuid.UUID
    occurred_at: AwareDatetime
    mode: Mode = Mode.LIVE
    classification: Classification = Classification.OFFICIAL
    category: Category
    location: Place
    police_grading: PoliceGrading | None = None


class Updated(_Narrow):
    """IncidentUpdated, as tension reads it: only a changed category or grading moves weight."""

    event_type: Literal["IncidentUpdated"]
    incident_id: uuid.UUID
    occurred_at: AwareDatetime
    mode: Mode = Mode.LIVE
    classification: Classification = Classification.OFFICIAL
    category: Category | None = None
    location: Place | None = None
    police_grading: PoliceGrading | None = None


class Linked(_Narrow):
    """IncidentLinked, as tension reads it: the duplicate's weight goes (it counts as its lead)."""

    event_type: Literal["IncidentLinked"]
    incident_id: uuid.UUID
    occurred_at: AwareDatetime
    mode: Mode = Mode.LIVE
    lead_incident_id: uuid.UUID


class StatusChanged(_Narrow):
    """IncidentStatusChanged, as tension reads it: unfounded and false alarm withdraw the weight."""

    event_type: Literal["IncidentStatusChanged"]
    incident_id: uuid.UUID
    occurred_at: AwareDatetime
    mode: Mode = Mode.LIVE
    status: IncidentStatus


TensionFact = Union[Reported, Updated, Linked, StatusChanged]
COUNTED = frozenset({"IncidentReported", "IncidentUpdated", "IncidentLinked", "IncidentStatusChanged"})
_ADAPTER: TypeAdapter[TensionFact] = TypeAdapter(Annotated[TensionFact, Field(discriminator="event_type")])
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
    return decode_as(_ADAPTER, value)


def read_calendar_fact(value: bytes | None, headers) -> CalendarFact:
    """A planned event or a silence (every field checked: they are few); PoisonRecord when unreadable."""
    kind = header(headers, "event_type")
    if kind is None:
        kind = _event_type_in(value)
    if kind not in CALENDAR_TYPES:
        raise PoisonRecord(f"event_type: {kind!r} does not belong on the tension calendar topic")
    fact = decode_as(_CALENDAR, value)
    codes = fact.wards if isinstance(fact, PlannedEventRegistered) else (
        (fact.ward_code,) if isinstance(fact, TensionSilenced) else ())
    for code in codes:
        try:
            _known_ward(code)
        except ValueError as exc:
            raise PoisonRecord(f"{'wards' if isinstance(fact, PlannedEventRegistered) else 'ward_code'}: {exc}") from None
    return fact


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
