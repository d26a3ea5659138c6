"""The narrow view of incident facts the escalation processor reads (pure).

Decoding a whole event (free text, people, a before-validator that makes pydantic build a
Python dict first) cost about three times what escalation needs. These models keep only
the fields `state.fold` and corroboration read, validated exactly as the full events
validate them (enums, ward list, ranges), ignore the rest, and keep the rule that no client
can lower a classification below its category's floor. Anything else on the incidents
topic (another event type, an undecodable value) is a PoisonRecord naming the field.
"""

from __future__ import annotations

import uuid
from typing import Literal, Union

from pydantic import AwareDatetime, model_validator

from services.shared import events as ev
from services.shared.narrow import Narrow, NarrowFact, event_type_of, reader


class Source(Narrow):
    kind: ev.SourceKind
    id: ev.Identifier
    agency: ev.Agency | None = None


class _Fact(NarrowFact):
    recorded_at: AwareDatetime | None = None  # always on the topic (intake stamps it); when Muster learnt it
    source: Source
    classification: ev.Classification = ev.Classification.OFFICIAL


class _Floored(_Fact):
    category: ev.Category | None = None

    @model_validator(mode="after")
    def _category_floor(self):  # the same floor as the full events apply
        if self.category is not None:
            floor = ev.default_classification(self.category)
            if self.classification.rank < floor.rank:
                return self.model_copy(update={"classification": floor})
        return self


class IncidentReported(_Floored):
    event_type: Literal["IncidentReported"]
    category: ev.Category
    severity: ev.Severity
    location: ev.Location
    casualties: ev.Casualties = ev.Casualties()
    hazards: tuple[ev.Hazard, ...] = ()
    agencies_required: tuple[ev.Agency, ...] = ()
    access: ev.Access | None = None
    presented_at: ev.Location | None = None
    outside_borough: ev.ShortText | None = None
    exercise: ev.ExerciseName | None = None

    _exercise = model_validator(mode="after")(ev.exercise_named)


class IncidentUpdated(_Floored):
    event_type: Literal["IncidentUpdated"]
    severity: ev.Severity | None = None
    location: ev.Location | None = None
    casualties: ev.Casualties | None = None
    hazards: tuple[ev.Hazard, ...] | None = None
    agencies_required: tuple[ev.Agency, ...] | None = None
    agencies_removed: tuple[ev.Agency, ...] | None = None
    access: ev.Access | None = None
    presented_at: ev.Location | None = None
    outside_borough: ev.ShortText | None = None


class IncidentAcknowledged(_Fact):
    event_type: Literal["IncidentAcknowledged"]


class ResponderDispatched(_Fact):
    event_type: Literal["ResponderDispatched"]
    agency: ev.Agency


class ResponderArrived(_Fact):
    event_type: Literal["ResponderArrived"]
    agency: ev.Agency


class IncidentStatusChanged(_Fact):
    event_type: Literal["IncidentStatusChanged"]
    status: ev.IncidentStatus


class IncidentLinked(_Fact):
    event_type: Literal["IncidentLinked"]
    lead_incident_id: uuid.UUID

    @model_validator(mode="after")
    def _not_itself(self) -> "IncidentLinked":
        if self.lead_incident_id == self.incident_id:
            raise ValueError("lead_incident_id: an incident cannot be linked to itself")
        return self


class NoteAdded(_Fact):
    event_type: Literal["NoteAdded"]


class MajorIncidentDeclared(_Fact):
    event_type: Literal["MajorIncidentDeclared"]
    declared_by: ev.Identifier
    agency: ev.Agency


VIEWS = (IncidentReported, IncidentUpdated, IncidentAcknowledged, ResponderDispatched, ResponderArrived,
         IncidentStatusChanged, IncidentLinked, NoteAdded, MajorIncidentDeclared)
if {event_type_of(v) for v in VIEWS} != set(ev.INCIDENT_FACT_TYPES):  # escalation reads every incident fact
    raise TypeError("services/escalation/facts.py: one view per incident fact type of events.py")
Fact = Union[VIEWS]
read_fact = reader(*VIEWS)  # one incident fact's JSON to its narrow view; anything else raises PoisonRecord
