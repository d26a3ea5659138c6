"""An incident as the escalation processor sees it, and the pure fold of facts into it.

The state is the value of the changelog-backed table (one per incident). Nothing here
does I/O; `fold` takes a state (or None) and one fact (a full event or the narrow view the
worker decodes, facts.py) and returns the next state.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from services.escalation.config import RuleSet
from services.shared import events as ev

if TYPE_CHECKING:
    from services.escalation.facts import Fact


class Raised(BaseModel):
    """One (incident, level) that has been escalated: it never escalates again."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_id: uuid.UUID
    at: datetime
    rule_id: str
    agencies: tuple[ev.Agency, ...]


class IncidentState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: uuid.UUID
    partition: int | None = None
    offset: int | None = None  # source offset (on `partition`) of the last fact applied: a replay is skipped
    mode: ev.Mode = ev.Mode.LIVE
    classification: ev.Classification = ev.Classification.OFFICIAL
    category: ev.Category | None = None
    severity: int | None = None
    location: ev.Location | None = None
    casualties: ev.Casualties = ev.Casualties()
    hazards: tuple[ev.Hazard, ...] = ()
    agencies_required: tuple[ev.Agency, ...] = ()
    agencies_present: tuple[ev.Agency, ...] = ()
    source_kind: ev.SourceKind | None = None
    status: ev.IncidentStatus = ev.IncidentStatus.OPEN
    reported_at: datetime | None = None
    last_fact_at: datetime | None = None
    acknowledged: bool = False
    major_declared: bool = False
    linked_to: uuid.UUID | None = None
    corroboration_rule: str | None = None
    corroborated_with: tuple[uuid.UUID, ...] = ()
    raised: dict[int, Raised] = {}
    rule_set: RuleSet | None = None
    next_deadline: datetime | None = None
    stood_down: bool = False
    closed_at: datetime | None = None  # when (worker's clock) it was finished: compacted, released later (retention.py)

    @property
    def max_level(self) -> int:
        return max(self.raised, default=0)

    @property
    def escalating(self) -> bool:
        """Can still escalate: reported, not linked to a lead, not finished."""
        return self.category is not None and self.linked_to is None and not self.status.terminal


# Every new state starts as a copy of this one (cheaper than validating the defaults again).
# Safe to share: states are frozen and every change makes a new state with model_copy.
_BLANK = IncidentState(incident_id=uuid.UUID(int=0))


def replayed(s: IncidentState | None, partition: int, offset: int) -> bool:
    """This fact (source partition and offset) was already applied: a replay after a crash."""
    return s is not None and s.offset is not None and s.partition == partition and offset <= s.offset


def _union(*groups: tuple[ev.Agency, ...]) -> tuple[ev.Agency, ...]:
    present = {a for g in groups for a in g}
    return tuple(a for a in ev.Agency if a in present)


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def fold(
    state: IncidentState | None, fact: ev.IncidentEvent | Fact, partition: int | None = None, offset: int | None = None,
) -> IncidentState:
    """The state after one incident fact. Late facts never move the status backwards."""
    s = state or _BLANK
    common = {
        "incident_id": fact.incident_id,
        "mode": s.mode if state is not None else fact.mode,
        "partition": partition if partition is not None else s.partition,
        "offset": offset if offset is not None else s.offset,
        "classification": ev.Classification.highest(s.classification, fact.classification),
        "last_fact_at": _later(s.last_fact_at, fact.occurred_at),
    }
    return s.model_copy(update={**common, **_changes(s, fact)})


def _changes(s: IncidentState, fact) -> dict:  # a full event or its narrow view (facts.py)
    match fact.event_type:
        case "IncidentReported":
            return {
                "mode": fact.mode, "category": fact.category, "severity": fact.severity, "location": fact.location,
                "casualties": fact.casualties, "hazards": fact.hazards, "agencies_required": fact.agencies_required,
                "source_kind": fact.source.kind, "reported_at": fact.occurred_at,
            }
        case "IncidentUpdated":
            return {
                f: getattr(fact, f)
                for f in ("category", "severity", "location", "casualties", "hazards", "agencies_required")
                if getattr(fact, f) is not None
            }
        case "IncidentAcknowledged":
            return {"acknowledged": True, "next_deadline": None}
        case "ResponderDispatched":
            return {"acknowledged": True, "next_deadline": None, **_status(s, ev.IncidentStatus.DISPATCHED)}
        case "ResponderArrived":
            return {
                "acknowledged": True, "next_deadline": None,
                "agencies_present": _union(s.agencies_present, (fact.agency,)),
                **_status(s, ev.IncidentStatus.ON_SCENE),
            }
        case "IncidentStatusChanged":
            moved = _status(s, fact.status)
            if fact.status.rank >= ev.IncidentStatus.ACKNOWLEDGED.rank:
                moved.update(acknowledged=True, next_deadline=None)
            return moved
        case "IncidentLinked":
            return {"linked_to": fact.lead_incident_id, "next_deadline": None}
        case "MajorIncidentDeclared":
            return {"major_declared": True}
        case _:
            return {}


def _status(s: IncidentState, status: ev.IncidentStatus) -> dict:
    return {"status": status} if status.rank > s.status.rank else {}


def corroborated(s: IncidentState, rule_id: str, members: tuple[uuid.UUID, ...]) -> IncidentState:
    """This incident leads a group of independent reports of the same thing."""
    merged = tuple(sorted({*s.corroborated_with, *members} - {s.incident_id}, key=str))
    return s.model_copy(update={"corroboration_rule": s.corroboration_rule or rule_id, "corroborated_with": merged})


def linked(s: IncidentState, lead: uuid.UUID) -> IncidentState:
    """This incident is one report of a group led by another: it escalates with its lead."""
    return s.model_copy(update={"linked_to": s.linked_to or lead, "next_deadline": None})
