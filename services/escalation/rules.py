"""The escalation decision: a pure function of an incident's state, the rules and the clock.

`decide(state, rules, now)` says which levels to raise (each level at most once), whether
to stand down, and when the next acknowledgement deadline falls. `apply` records the
decision in the state. Neither does any I/O.

An incident keeps the rule set in force when it first escalated (`state.rule_set`), so an
edited rules file never rewrites an escalation in flight.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.escalation.config import Conditions, RuleSet
from services.escalation.state import IncidentState, Raised
from services.shared.events import Agency, derived_event_id

DEADLINE_RULE = "acknowledgement-deadline"


@dataclass(frozen=True, slots=True)
class Raise:
    level: int
    rule_id: str
    reason: str
    agencies: tuple[Agency, ...]
    at: datetime
    related: tuple[uuid.UUID, ...] = ()
    trigger: datetime | None = None  # when Muster learnt what it decided on (CAP <sent>); None: the state's

    def event_id(self, incident_id: uuid.UUID) -> uuid.UUID:
        return raised_event_id(incident_id, self.level)


@dataclass(frozen=True, slots=True)
class Decision:
    rules: RuleSet
    raises: tuple[Raise, ...] = ()
    stand_down: bool = False
    next_deadline: datetime | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def acts(self) -> bool:
        return bool(self.raises or self.stand_down)


def raised_event_id(incident_id: uuid.UUID, level: int) -> uuid.UUID:
    return derived_event_id(incident_id, level, "raised")


def stood_down_event_id(incident_id: uuid.UUID) -> uuid.UUID:
    return derived_event_id(incident_id, "stood-down")


def matches(when: Conditions, s: IncidentState) -> bool:
    """Every condition given holds (checked cheapest first, stopping at the first that fails)."""
    if when.categories is not None and s.category not in when.categories:
        return False
    if when.min_severity is not None and (s.severity or 0) < when.min_severity:
        return False
    if when.major_incident_declared is not None and s.major_declared != when.major_incident_declared:
        return False
    c = s.casualties
    if when.min_casualties is not None and c.total < when.min_casualties:
        return False
    if when.min_fatalities is not None and c.fatalities < when.min_fatalities:
        return False
    if when.min_serious is not None and c.serious < when.min_serious:
        return False
    return when.hazards_any is None or any(h in when.hazards_any for h in s.hazards)


def agencies_for(rules: RuleSet, s: IncidentState, level: int, extra: tuple[Agency, ...] = ()) -> tuple[Agency, ...]:
    """The level's agencies, the rule's additions and, from level 2, those the incident requires."""
    wanted = {*rules.levels[level].agencies, *extra, *(s.agencies_required if level >= 2 else ())}
    return tuple(a for a in Agency if a in wanted)


def _threshold(rules: RuleSet, s: IncidentState, at: datetime) -> Raise | None:
    """The highest level any threshold or corroboration rule reaches, if above what was raised."""
    best: Raise | None = None
    for rule in rules.rules:
        if matches(rule.when, s) and (best is None or rule.level > best.level):
            best = Raise(rule.level, rule.id, rule.description, agencies_for(rules, s, rule.level, rule.agencies), at)
    if s.corroboration_rule:
        rule = next((r for r in rules.corroboration if r.id == s.corroboration_rule), None)
        if rule is not None and (best is None or rule.level > best.level):
            reason = f"{len(s.corroborated_with) + 1} independent reports: {rule.description}"
            best = Raise(rule.level, rule.id, reason[:200], agencies_for(rules, s, rule.level), at, s.related_ids)
    if best is None or best.level <= s.max_level:
        return None
    if not best.related and s.related_ids:
        best = Raise(best.level, best.rule_id, best.reason, best.agencies, best.at, s.related_ids)
    return best


def decide(s: IncidentState, current: RuleSet, now: datetime) -> Decision:
    rules = s.rule_set or current
    if s.status.terminal or s.linked_to is not None:
        # Finished, or a duplicate of a lead incident: its own chain (if any) ends here.
        return Decision(rules, stand_down=bool(s.raised) and not s.stood_down)
    if s.category is None or s.awaiting_correlation:
        return Decision(rules)  # facts before the report, or a report before its correlation verdict
    raises: list[Raise] = []
    first = _threshold(rules, s, s.last_fact_at or now)
    if first:
        raises.append(first)
    level = max(s.max_level, first.level if first else 0)
    deadline = _climb(rules, s, now, level, raises)
    return Decision(rules, tuple(raises), next_deadline=deadline)


def _climb(rules: RuleSet, s: IncidentState, now: datetime, level: int, raises: list[Raise]) -> datetime | None:
    """Unacknowledged past each deadline: one level per deadline, up to the climb limit."""
    policy = rules.acknowledgement
    seconds = policy.deadline_for(s.severity)
    if s.acknowledged or seconds is None or s.reported_at is None:
        return None
    step = timedelta(seconds=seconds)
    due = s.next_deadline or s.reported_at + step
    while level < policy.climb_limit and due <= now:
        level += 1
        reason = f"not acknowledged within {seconds:g}s (severity {s.severity})"
        raises.append(Raise(level, DEADLINE_RULE, reason, agencies_for(rules, s, level), due, s.related_ids, due))
        due += step
    return due if level < policy.climb_limit else None


def apply(s: IncidentState, d: Decision) -> IncidentState:
    """The state once the decision's outputs are produced."""
    if not d.raises and not d.stand_down and d.next_deadline == s.next_deadline:
        return s  # nothing to record
    raised = dict(s.raised)
    for r in d.raises:
        raised.setdefault(r.level, Raised(event_id=r.event_id(s.incident_id), at=r.at, rule_id=r.rule_id,
                                          agencies=r.agencies))
    update: dict = {"raised": raised, "next_deadline": d.next_deadline}
    if d.raises and s.rule_set is None:
        update["rule_set"] = d.rules
    if d.stand_down:
        update["stood_down"] = True
    return s.model_copy(update=update)
