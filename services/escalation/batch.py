"""One batch of inputs for one partition (pure): states folded, decided and applied in order.

The agent hands in the facts of a pack (or one control notice) as `Input`s; each incident's
state is looked up once, every input is folded and decided in order (so a report followed
by its resolution in the same batch still raises, then stands down), and the outcome holds
each changed incident's final state once, every event to produce, and the new reports to
nominate for corroboration (and those now over, so their windows stop linking to them). An
incident that is finished (retention.py) is stored compacted. A fact already applied (same
source partition, offset at or below the state's) is a replay after a crash and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.escalation import corroboration, facts, rules
from services.escalation.config import RuleSet
from services.escalation.outputs import Delivery, Emitter
from services.escalation.retention import settle
from services.shared.admission import Refused
from services.escalation.state import OPERATOR_LINK, IncidentState, ignored, replayed
from services.shared.events import IncidentReported, Related

Report = IncidentReported | facts.IncidentReported
Change = Callable[[IncidentState | None], IncidentState | None]


@dataclass(frozen=True, slots=True)
class Input:
    incident: str
    change: Change
    offset: int | None = None  # a fact's source offset; None for a control notice
    report: Report | None = None  # a report, nominated for correlation when it is new
    notice: corroboration.Notice | None = None  # a control notice (the change applies it)


@dataclass
class Outcome:
    states: dict[str, IncidentState] = field(default_factory=dict)  # changed incidents, final state
    produced: list[Delivery] = field(default_factory=list)  # each event to each of its recipients
    nominated: list[Report] = field(default_factory=list)  # new reports correlation rules cover
    notices: list[corroboration.Notice] = field(default_factory=list)  # to leads (operator links), to reports (unlinked)
    closed: list[corroboration.Candidate] = field(default_factory=list)  # to their windows: over, lead no more
    replays: int = 0
    refused: list[tuple[int | None, Refused]] = field(default_factory=list)  # (source offset, why): to dead-letter


def _closes(before: IncidentState | None, after: IncidentState, current: RuleSet) -> bool:
    """The incident is over now, and was a report correlation covers: its window must know it leads
    nothing more (corroboration.py). (The location is read before `settle` compacts it away.)"""
    if not after.status.terminal or (before is not None and before.status.terminal):
        return False
    if after.category is None or after.linked_to is not None or after.location is None:
        return False
    return (current.correlation_for(after.category) is not None
            and after.location.lat is not None and after.location.lon is not None)


def _to_lead_that_is_over(notice: corroboration.Notice | None, lead: IncidentState | None) -> bool:
    """Reports a correlation rule joined to a lead that is over (or already released)."""
    if notice is None or notice.kind != "correlated":
        return False
    return lead is None or lead.category is None or lead.status.terminal


def process(
    inputs: Iterable[Input], load: Callable[[str], IncidentState | None], current: RuleSet, *,
    partition: int, sender: str, now: datetime, contact: str = "",
) -> Outcome:
    out = Outcome()
    emitter = Emitter(sender, contact)
    for item in inputs:
        before = out.states[item.incident] if item.incident in out.states else load(item.incident)
        if item.offset is not None and replayed(before, partition, item.offset):
            out.replays += 1
            continue
        if _to_lead_that_is_over(item.notice, before):
            # Linked in the moment between the lead's closing and its window hearing of it: the
            # reports are emergencies of their own again (state.unlinked).
            out.notices += [corroboration.Notice(kind="unlinked", incident_id=r.incident_id, lead=item.notice.incident_id,
                                                 at=item.notice.at)
                            for r in item.notice.related if r.rule_id != OPERATOR_LINK]
            continue
        try:
            state = item.change(before)
        except Refused as refused:  # services/shared/admission.py: dead-lettered by the agent, never applied
            out.refused.append((item.offset, refused))
            if before is not None and item.offset is not None:
                out.states[item.incident] = ignored(before, partition, item.offset)
            continue
        if state is None:
            continue
        if item.report is not None and before is None and corroboration.wanted(item.report, state.rule_set or current):
            out.nominated.append(item.report)
            state = state.model_copy(update={"awaiting_correlation": True})
        if item.offset is not None and state.linked_to is not None and (before is None or before.linked_to is None):
            # An operator linked this report to a lead: the lead's chain lists it from now on.
            out.notices.append(corroboration.Notice(
                kind="correlated", incident_id=state.linked_to, at=state.recorded_at,
                related=(Related(incident_id=state.incident_id, rule_id=OPERATOR_LINK),)))
        decision = rules.decide(state, current, now)
        produced, after = emitter.emit(state, decision, now, before)
        out.produced += produced
        if _closes(before, after, after.rule_set or current):
            out.closed.append(corroboration.closing(after.incident_id, partition,
                                                    after.category.value, after.mode.value,
                                                    after.status_at or now, after.exercise))
        after = settle(after, now, partition)  # a finished incident kept compactly until released
        if item.offset is not None or after != before:
            out.states[item.incident] = after
    return out
