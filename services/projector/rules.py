"""The status rules: how one incident's current state follows from its facts. Pure, no I/O.

`apply(state, event)` is the single step; `fold(events)` is the plain reference fold the
tests compare the store with. The projector calls `apply` for each fact it inserts into
the timeline for the first time, so a fact changes state once, whatever is re-delivered.

- status never moves backwards: a status fact applies only if its rank
  (`IncidentStatus.rank`) is higher than the current one, or equal with a later
  `occurred_at` (resolved / unfounded / false_alarm share a rank);
- classification only rises (`Classification.highest`);
- a report that arrives after other facts fills in the placeholder those facts created,
  without overwriting what a later update already set;
- counters and times are commutative (count, max, min), so facts from other topics
  (escalations) give the same state whatever order they arrive in.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from services.shared import events as ev

IncidentStatus = ev.IncidentStatus


@dataclasses.dataclass(slots=True)
class IncidentState:
    """One row of the `incidents` table (column names are the field names)."""

    incident_id: uuid.UUID
    occurred_at: datetime
    last_event_at: datetime
    updated_at: datetime
    mode: str
    reported: bool = False
    category: str | None = None
    severity: int | None = None
    status: str = IncidentStatus.OPEN.value
    status_rank: int = 0
    status_at: datetime | None = None
    ward_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    what3words: str | None = None
    description: str | None = None
    casualties: str | None = None  # JSON text of Casualties
    hazards: list[str] = dataclasses.field(default_factory=list)
    agencies_required: list[str] = dataclasses.field(default_factory=list)
    agencies_dispatched: list[str] = dataclasses.field(default_factory=list)
    agencies_on_scene: list[str] = dataclasses.field(default_factory=list)
    police_grading: str | None = None
    classification: str = ev.Classification.OFFICIAL.value
    lead_incident_id: uuid.UUID | None = None
    reported_at: datetime | None = None
    acknowledged_at: datetime | None = None
    version: int = 0
    people: str = "[]"  # JSON text; restricted: sealed (SealedPeople) when not empty
    escalation_level: int = 0
    major_incident_declared: bool = False
    source_kind: str | None = None
    source_id: str | None = None
    source_agency: str | None = None


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(IncidentState))
as_row = operator.attrgetter(*COLUMNS)  # IncidentState -> tuple in COLUMNS order


def placeholder(event: ev.IncidentEvent) -> IncidentState:
    """The row a fact creates when its incident's report has not arrived yet."""
    return IncidentState(
        incident_id=event.incident_id,
        occurred_at=event.occurred_at,
        last_event_at=event.occurred_at,
        updated_at=event.recorded_at,
        mode=event.mode.value,
    )


def apply(state: IncidentState | None, event: ev.IncidentEvent) -> IncidentState:
    """The state after one newly applied fact (the input is not changed)."""
    return step(copy.copy(state) if state is not None else placeholder(event), event)


def step(state: IncidentState, event: ev.IncidentEvent) -> IncidentState:
    """Apply one newly applied fact to `state` in place (transitions replace lists, never mutate them)."""
    state.version += 1
    if event.occurred_at > state.last_event_at:
        state.last_event_at = event.occurred_at
    if event.recorded_at > state.updated_at:
        state.updated_at = event.recorded_at
    if event.classification != state.classification:
        state.classification = ev.Classification.highest(
            ev.Classification(state.classification), event.classification
        ).value
    transition = TRANSITIONS.get(event.event_type)
    if transition is not None:
        transition(state, event)
    return state


def fold(events: Iterable[ev.IncidentEvent]) -> dict[uuid.UUID, IncidentState]:
    """The reference: every incident's state from its facts in log order, each event_id once."""
    seen: set[uuid.UUID] = set()
    states: dict[uuid.UUID, IncidentState] = {}
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        states[event.incident_id] = apply(states.get(event.incident_id), event)
    return states


# --- one transition per event type ---------------------------------------------------------


def _move_status(state: IncidentState, status: IncidentStatus, at: datetime) -> None:
    if status.advances_over(IncidentStatus(state.status), state.status_at, at):
        state.status, state.status_rank, state.status_at = status.value, status.rank, at


def _fill(state: IncidentState, field: str, value: object) -> None:
    if getattr(state, field) is None:
        setattr(state, field, value)


def _details(event: ev.IncidentReported | ev.IncidentUpdated) -> dict[str, object]:
    """The descriptive columns an event carries (None: not given)."""
    loc = event.location
    return {
        "category": event.category.value if event.category is not None else None,
        "severity": event.severity,
        "ward_code": loc.ward_code if loc else None,
        "lat": loc.lat if loc else None,
        "lon": loc.lon if loc else None,
        "address": loc.address if loc else None,
        "what3words": loc.what3words if loc else None,
        "description": event.description,
        "casualties": event.casualties.model_dump_json() if event.casualties is not None else None,
        "hazards": [h.value for h in event.hazards] if event.hazards is not None else None,
        # In the vocabulary's order, as every later union leaves it: the row is then the same whichever
        # topic's fact came first (a derived fact can make the placeholder before the report lands).
        "agencies_required": ([a.value for a in ev.agencies_union(event.agencies_required)]
                              if event.agencies_required is not None else None),
        "police_grading": event.police_grading.value if event.police_grading is not None else None,
        "people": (event.people_sealed.model_dump_json() if event.people_sealed is not None
                   else _people_json(event.people) if event.people is not None else None),
    }


def _people_json(people: tuple[ev.Person, ...]) -> str:
    """People in the clear: an empty list from intake (it seals every other into people_sealed, stored as it is)."""
    return "[" + ",".join(p.model_dump_json() for p in people) + "]"


def _reported(state: IncidentState, event: ev.IncidentReported) -> None:
    details = _details(event)
    if state.version == 1:  # first fact: the report sets everything
        for field, value in details.items():
            setattr(state, field, value)
    else:  # a late report fills in what no update has set
        for field, value in details.items():
            if field == "agencies_required":
                state.agencies_required = [a.value for a in ev.agencies_union(state.agencies_required, value)]
            elif field == "hazards":
                if not getattr(state, field):
                    setattr(state, field, value)
            elif field == "people":
                if state.people == "[]":
                    state.people = value
            else:
                _fill(state, field, value)
    state.reported = True
    state.occurred_at = event.occurred_at
    state.reported_at = event.recorded_at
    state.mode = event.mode.value
    state.source_kind = event.source.kind.value
    state.source_id = event.source.id
    state.source_agency = event.source.agency.value if event.source.agency else None
    if state.status_at is None:
        state.status_at = event.occurred_at


def _updated(state: IncidentState, event: ev.IncidentUpdated) -> None:
    for field, value in _details(event).items():
        if value is not None and field != "agencies_required":
            setattr(state, field, value)
    if event.agencies_required is not None or event.agencies_removed is not None:  # a union, less explicit removals
        removed = {a.value for a in event.agencies_removed or ()}
        grown = ev.agencies_union(state.agencies_required, event.agencies_required)
        state.agencies_required = [a.value for a in grown if a.value not in removed]


def _acknowledged(state: IncidentState, event: ev.IncidentEvent) -> None:
    state.acknowledged_at = min(filter(None, (state.acknowledged_at, event.occurred_at)))
    _move_status(state, IncidentStatus.ACKNOWLEDGED, event.occurred_at)


def _add(values: list[str], value: str) -> list[str]:
    return values if value in values else sorted([*values, value])


def _dispatched(state: IncidentState, event: ev.ResponderDispatched) -> None:
    state.agencies_dispatched = _add(state.agencies_dispatched, event.agency.value)
    _move_status(state, IncidentStatus.DISPATCHED, event.occurred_at)


def _arrived(state: IncidentState, event: ev.ResponderArrived) -> None:
    state.agencies_on_scene = _add(state.agencies_on_scene, event.agency.value)
    _move_status(state, IncidentStatus.ON_SCENE, event.occurred_at)


def _status_changed(state: IncidentState, event: ev.IncidentStatusChanged) -> None:
    if event.status is IncidentStatus.ACKNOWLEDGED:
        _acknowledged(state, event)
    else:
        _move_status(state, event.status, event.occurred_at)


def _linked(state: IncidentState, event: ev.IncidentLinked) -> None:
    state.lead_incident_id = event.lead_incident_id


def _major_incident(state: IncidentState, event: ev.MajorIncidentDeclared) -> None:
    state.major_incident_declared = True


def _escalation_raised(state: IncidentState, event: ev.EscalationRaised) -> None:
    state.escalation_level = max(state.escalation_level, event.level)


def _nothing(state: IncidentState, event: ev.IncidentEvent) -> None:
    """The fact enters the timeline (and counts) but changes no column of its own."""


TRANSITIONS: dict[str, Callable[[IncidentState, ev.IncidentEvent], None]] = {
    "IncidentReported": _reported,
    "IncidentUpdated": _updated,
    "IncidentAcknowledged": _acknowledged,
    "ResponderDispatched": _dispatched,
    "ResponderArrived": _arrived,
    "IncidentStatusChanged": _status_changed,
    "IncidentLinked": _linked,
    "NoteAdded": _nothing,
    "MajorIncidentDeclared": _major_incident,
    "EscalationRaised": _escalation_raised,
    "EscalationUpdated": _nothing,
    "EscalationStoodDown": _nothing,
}
