"""An incident as the escalation processor sees it, and the pure fold of facts into it.

The state is the value of the changelog-backed table (one per incident). Nothing here
does I/O; `fold` takes a state (or None) and one fact (a full event or the narrow view the
worker decodes, facts.py) and returns the next state.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, ValidationInfo, field_validator

from services.escalation.config import RuleSet
from services.shared import events as ev
from services.shared.admission import Refused, Reported, refusal

if TYPE_CHECKING:
    from services.escalation.facts import Fact


_NAMES: dict[int, tuple[RuleSet, str]] = {}  # id -> (rule set, its name): a name is computed once per instance


def rule_set_name(rules: RuleSet) -> str:
    """`<version>@<digest of its content>`: what a state's record says instead of the rule set
    (a rules file changed under the same version is another name)."""
    known = _NAMES.get(id(rules))
    if known is not None and known[0] is rules:
        return known[1]
    digest = hashlib.sha256(rules.model_dump_json().encode()).hexdigest()[:16]
    name = f"{rules.version}@{digest}"
    if len(_NAMES) < 64:  # a worker meets a handful; past the bound each is named again
        _NAMES[id(rules)] = (rules, name)
    return name


# A state's JSON names its pinned rule set (RuleSets reads the name back).
PinnedRules = Annotated[RuleSet | None, PlainSerializer(rule_set_name, when_used="json-unless-none")]


class Raised(BaseModel):
    """One (incident, level) that has been escalated: it never escalates again."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_id: uuid.UUID
    at: datetime
    rule_id: str
    agencies: tuple[ev.Agency, ...]


class Sent(BaseModel):
    """One message of the incident's CAP chain (an alert or an update): what later ones reference."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_id: uuid.UUID
    sent: datetime


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
    status_at: datetime | None = None  # occurred_at of the fact that set the status
    reported_at: datetime | None = None
    last_fact_at: datetime | None = None
    acknowledged: bool = False
    major_declared: bool = False
    linked_to: uuid.UUID | None = None
    corroboration_rule: str | None = None
    corroborated_with: tuple[uuid.UUID, ...] = ()
    raised: dict[int, Raised] = {}
    rule_set: PinnedRules = None
    next_deadline: datetime | None = None
    stood_down: bool = False
    # --- what the messages say (issue 14) ---
    recorded_at: datetime | None = None  # of the last fact applied: when Muster learnt what it decides on
    exercise: str | None = None
    source_agency: ev.Agency | None = None  # the reporter's agency: an owner of the incident
    agencies_dispatched: tuple[ev.Agency, ...] = ()
    access: ev.Access | None = None
    presented_at: ev.Location | None = None
    outside_borough: str | None = None  # the scene is outside the borough (location: where the borough deals with it)
    declarations: tuple[ev.Declaration, ...] = ()
    awaiting_correlation: bool = False  # a report correlation covers: no escalation before its verdict
    related: tuple[ev.Related, ...] = ()  # reports correlated into this lead, with provenance
    duplicate: ev.Related | None = None  # this report is a duplicate of `duplicate.incident_id` (the lead)
    chain: tuple[Sent, ...] = ()  # every alert and update sent, in order
    methane_digest: str | None = None  # of the M/ETHANE last sent: a material change sends an update
    ignored: int = 0  # facts whose mode differs from the incident's: never applied
    closed_at: datetime | None = None  # when (worker's clock) it was finished: compacted, released later (retention.py)

    @field_validator("rule_set", mode="before")
    @classmethod
    def _named(cls, value, info: ValidationInfo):
        """A record names its pinned rule set (`rule_set_name`); RuleSets.parse knows the names.
        (A record written before names were, carrying the rule set whole, is read as it is.)"""
        if not isinstance(value, str):
            return value
        resolve = (info.context or {}).get("rule_sets")
        if resolve is None:
            raise ValueError(f"names rule set {value!r}: read the record with RuleSets.parse")
        return resolve(value)

    @property
    def max_level(self) -> int:
        return max(self.raised, default=0)

    @property
    def related_ids(self) -> tuple[uuid.UUID, ...]:
        """Reports taken for the same emergency: corroborating and correlated, in a stable order."""
        return tuple(sorted({*self.corroborated_with, *(r.incident_id for r in self.related)}, key=str))

    @property
    def escalating(self) -> bool:
        """Can still escalate: reported, not linked to a lead, not finished."""
        return self.category is not None and self.linked_to is None and not self.status.terminal


def record(state: IncidentState) -> bytes:
    """A state's record in the table and on its changelog: its JSON without the fields at their
    defaults (parsing gives them back), its pinned rule set by name (RuleSets.parse reads it).
    An escalated state's record is ~0.7 KB (5.4 KB when it carried its rule set and defaults)."""
    return state.__pydantic_serializer__.to_json(state, exclude_defaults=True)


RULE_SET_PREFIX = b"rule-set/"  # the table's records of the rule sets its states name (not incidents)
def rule_set_key(name: str, partition: int) -> bytes:
    """The table key of a named rule set on one partition: each partition's changelog carries the
    rule sets its states name, so the worker that recovers a partition can read them."""
    return RULE_SET_PREFIX + f"{name}/{partition}".encode()


class RuleSets:
    """The rule sets the states pin, one instance of each, by name.

    A state that escalated keeps the rule set then in force (`rule_set`, rules.py). Its record
    names it (`rule_set_name`); the rule set itself is a record of its own in the same table
    (`rule_set_key`, written by the worker before the first state that names it on each partition).
    Carried whole, it was 4 KB of a 5.4 KB record, written again with every change of an escalated
    incident and kept by the table once per state (the soaks of 2026-12-03: the escalation
    worker's RSS grew with the open states it held). Every state read back shares one instance of
    each rule set (a state parsed with a rule set of its own was ~30 KB of objects: the worker's
    30-50 MB step at each rejoin in the same soaks). `lookup` reads a named rule set's record
    (None: not there); at most `limit` distinct rule sets are kept (a worker meets a handful: one
    per rules file it ran with)."""

    def __init__(self, *known: RuleSet, limit: int = 32, lookup: Callable[[str], bytes | None] | None = None) -> None:
        self._by_version: dict[str, list[RuleSet]] = {}
        self._by_name: dict[str, RuleSet] = {}
        self._count = 0
        self._limit = limit
        self._lookup = lookup
        self._context = {"rule_sets": self.named}
        for rules in known:
            self.shared(rules)

    def shared(self, rules: RuleSet) -> RuleSet:
        """The known instance equal to `rules` (then `rules` is remembered, room permitting)."""
        same = self._by_version.setdefault(rules.version, [])
        for known in same:
            if known is rules or known == rules:
                return known
        if self._count < self._limit:
            same.append(rules)
            self._by_name[rule_set_name(rules)] = rules
            self._count += 1
        return rules

    def named(self, name: str) -> RuleSet:
        """The rule set a record names: known, or read from its own record (ValueError: neither)."""
        rules = self._by_name.get(name)
        if rules is not None:
            return rules
        raw = self._lookup(name) if self._lookup is not None else None
        if raw is None:
            raise ValueError(f"rule set {name!r} is named by the state but not in the table")
        rules = self.shared(RuleSet.model_validate_json(raw))
        self._by_name.setdefault(name, rules)
        return rules

    def parse(self, raw: bytes | str) -> IncidentState:
        """A state from its table record, its pinned rule set shared."""
        state = IncidentState.model_validate_json(raw, context=self._context)
        if state.rule_set is None:
            return state
        rules = self.shared(state.rule_set)
        return state if rules is state.rule_set else state.model_copy(update={"rule_set": rules})


# Every new state starts as a copy of this one (cheaper than validating the defaults again).
# Safe to share: states are frozen and every change makes a new state with model_copy.
_BLANK = IncidentState(incident_id=uuid.UUID(int=0))


OPERATOR_LINK = "operator-link"


def replayed(s: IncidentState | None, partition: int, offset: int) -> bool:
    """This fact (source partition and offset) was already applied: a replay after a crash."""
    return s is not None and s.offset is not None and s.partition == partition and offset <= s.offset


_union = ev.agencies_union


def ignored(s: IncidentState, partition: int, offset: int) -> IncidentState:
    """The state after a fact `fold` refused: unchanged but counted, and its offset recorded (a
    replay skips it)."""
    return s.model_copy(update={"ignored": s.ignored + 1, "partition": partition, "offset": offset})


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def fold(
    state: IncidentState | None, fact: ev.IncidentEvent | Fact, partition: int | None = None, offset: int | None = None,
) -> IncidentState:
    """The state after one incident fact. Late facts never move the status backwards.
    A second report, or a fact whose mode is not its incident's, raises Refused
    (services/shared/admission.py): the agent dead-letters it and the state is unchanged."""
    first = Reported(state.mode.value) if state is not None and state.reported_at is not None else None
    why = refusal(first, fact.event_type, fact.mode, fact.incident_id)
    if why is not None:
        raise Refused(why)
    s = state or _BLANK
    common = {
        "incident_id": fact.incident_id,
        "mode": s.mode if state is not None else fact.mode,
        "partition": partition if partition is not None else s.partition,
        "offset": offset if offset is not None else s.offset,
        "classification": ev.Classification.highest(s.classification, fact.classification),
        "last_fact_at": _later(s.last_fact_at, fact.occurred_at),
        "recorded_at": _later(s.recorded_at, getattr(fact, "recorded_at", None) or fact.occurred_at),
    }
    return s.model_copy(update={**common, **_changes(s, fact)})


def _changes(s: IncidentState, fact) -> dict:  # a full event or its narrow view (facts.py)
    match fact.event_type:
        case "IncidentReported":
            return {
                "mode": fact.mode, "category": fact.category, "severity": fact.severity, "location": fact.location,
                "casualties": fact.casualties, "hazards": fact.hazards,
                "agencies_required": _union(s.agencies_required, fact.agencies_required),
                "source_kind": fact.source.kind, "reported_at": fact.occurred_at, "exercise": fact.exercise,
                "source_agency": fact.source.agency, "access": fact.access, "presented_at": fact.presented_at,
                "outside_borough": fact.outside_borough,
            }
        case "IncidentUpdated":
            changes = {
                f: getattr(fact, f)
                for f in ("category", "severity", "location", "casualties", "hazards", "access",
                          "presented_at", "outside_borough")
                if getattr(fact, f) is not None
            }
            if fact.agencies_required is not None or fact.agencies_removed is not None:
                grown = _union(s.agencies_required, fact.agencies_required)
                changes["agencies_required"] = tuple(a for a in grown if a not in (fact.agencies_removed or ()))
            return changes
        case "IncidentAcknowledged":
            return {"acknowledged": True, "next_deadline": None}
        case "ResponderDispatched":
            return {"acknowledged": True, "next_deadline": None, **_status(s, ev.IncidentStatus.DISPATCHED, fact),
                    "agencies_dispatched": _union(s.agencies_dispatched, (fact.agency,))}
        case "ResponderArrived":
            return {
                "acknowledged": True, "next_deadline": None,
                "agencies_present": _union(s.agencies_present, (fact.agency,)),
                **_status(s, ev.IncidentStatus.ON_SCENE, fact),
            }
        case "IncidentStatusChanged":
            moved = _status(s, fact.status, fact)
            if fact.status.rank >= ev.IncidentStatus.ACKNOWLEDGED.rank:
                moved.update(acknowledged=True, next_deadline=None)
            return moved
        case "IncidentLinked":
            if s.linked_to is not None:
                return {}  # already a duplicate of a lead: the first link stands
            return {"linked_to": fact.lead_incident_id, "next_deadline": None, "awaiting_correlation": False,
                    "duplicate": ev.Related(incident_id=fact.lead_incident_id, rule_id=OPERATOR_LINK)}
        case "MajorIncidentDeclared":
            declaration = ev.Declaration(declared_by=fact.declared_by, agency=fact.agency, at=fact.occurred_at)
            if declaration in s.declarations:
                return {}
            return {"major_declared": True,
                    "declarations": tuple(sorted((*s.declarations, declaration), key=lambda d: d.at))}
        case _:
            return {}


def _status(s: IncidentState, status: ev.IncidentStatus, fact) -> dict:  # a full event or its narrow view
    return {"status": status, "status_at": fact.occurred_at} if status.advances_over(s.status, s.status_at,
                                                                                    fact.occurred_at) else {}


def corroborated(s: IncidentState, rule_id: str, members: tuple[uuid.UUID, ...]) -> IncidentState:
    """This incident leads a group of independent reports of the same thing."""
    merged = tuple(sorted({*s.corroborated_with, *members} - {s.incident_id}, key=str))
    return s.model_copy(update={"corroboration_rule": s.corroboration_rule or rule_id, "corroborated_with": merged})


def correlated(s: IncidentState, related: tuple[ev.Related, ...], at: datetime | None = None) -> IncidentState:
    """Reports of the same emergency joined this lead (by a correlation rule or an operator's link)."""
    known = {r.incident_id for r in s.related}
    new = tuple(r for r in related if r.incident_id not in known and r.incident_id != s.incident_id)
    update: dict = {"awaiting_correlation": False}
    if new:
        update["related"] = (*s.related, *new)
    if at is not None:
        update["recorded_at"] = _later(s.recorded_at, at)
    return s.model_copy(update=update)


def linked(s: IncidentState, lead: uuid.UUID, relation: ev.Related | None = None) -> IncidentState:
    """This incident is one report of a group led by another: it escalates with its lead."""
    if s.linked_to is not None:
        return s.model_copy(update={"awaiting_correlation": False})
    return s.model_copy(update={"linked_to": lead, "next_deadline": None, "awaiting_correlation": False,
                                "duplicate": relation or ev.Related(incident_id=lead, rule_id=OPERATOR_LINK)})


def unlinked(s: IncidentState, lead: uuid.UUID | None) -> IncidentState:
    """The lead this report was linked to by a correlation rule was over when the link reached it
    (its window had not yet heard): the report is an emergency of its own again and escalates as
    a lead would (batch.py). An operator's link is never undone so."""
    if lead is None or s.linked_to != lead or (s.duplicate is not None and s.duplicate.rule_id == OPERATOR_LINK):
        return s
    return s.model_copy(update={"linked_to": None, "duplicate": None, "awaiting_correlation": False})


def apply_notice(s: IncidentState | None, notice) -> IncidentState | None:
    """A control notice: a deadline tick, a correlation verdict, reports joining a lead, corroboration."""
    if notice.kind == "deadline":
        return s
    base = s or IncidentState(incident_id=notice.incident_id)
    at = notice.at
    if notice.kind == "lead":
        return base.model_copy(update={"awaiting_correlation": False,
                                       "recorded_at": _later(base.recorded_at, at) if at else base.recorded_at})
    if notice.kind == "linked" and notice.lead:
        relation = notice.related[0] if notice.related else None
        moved = linked(base, notice.lead, relation)
        return moved.model_copy(update={"recorded_at": _later(moved.recorded_at, at)}) if at else moved
    if notice.kind == "correlated":
        return correlated(base, notice.related, at)
    if notice.kind == "unlinked":
        return unlinked(s, notice.lead) if s is not None else None
    if notice.kind == "corroborated" and notice.rule_id:
        moved = corroborated(base, notice.rule_id, notice.members)
        return moved.model_copy(update={"recorded_at": _later(moved.recorded_at, at)}) if at else moved
    from services.shared.codec import PoisonRecord

    raise PoisonRecord(f"kind: unknown control notice {notice.kind!r}")
