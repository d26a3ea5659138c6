"""The escalation processor's pure pipeline end to end, with no Kafka: for golden files and
property tests.

Facts are taken in the order given (the simulator's `recorded_at` order); each goes through
`batch.process` exactly as one worker would (fold, decide, emit); reports that correlation
covers go through `corroboration.observe` and its notices come straight back; acknowledgement
deadlines fall due on the clock of the facts (a fact's `recorded_at`) and once more at the end.
What the worker would send to each recipient is collected as `Delivery`s, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.escalation import batch
from services.escalation import corroboration as corr
from services.escalation.config import RuleSet
from services.escalation.outputs import Delivery
from services.escalation.state import IncidentState, apply_notice, fold
from services.shared import events as ev

SENDER = "escalation@muster.partnership.example"
CONTACT = "Partnership control room, 24h, via the duty officer's line"
PARTITIONS = 6


@dataclass
class Chain:
    rules: RuleSet
    states: dict[str, IncidentState] = field(default_factory=dict)
    windows: dict[str, corr.Window] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)

    def _partition(self, incident: str) -> int:
        return int(incident.replace("-", ""), 16) % PARTITIONS

    def _run(self, inputs: list[batch.Input], partition: int, now: datetime) -> None:
        out = batch.process(inputs, self.states.get, self.rules, partition=partition, sender=SENDER,
                            contact=CONTACT, now=now)
        self.states.update(out.states)
        self.deliveries += out.produced
        for report in out.nominated:
            self._nominate(report, partition, now)
        for notice in out.notices:
            self.notice(notice, now)

    def notice(self, notice: corr.Notice, now: datetime) -> None:
        incident = str(notice.incident_id)
        self._run([batch.Input(incident, lambda s, n=notice: apply_notice(s, n))], self._partition(incident), now)

    def _nominate(self, fact: ev.IncidentReported, partition: int, now: datetime) -> None:
        loc = fact.location
        candidate = corr.Candidate(
            incident_id=fact.incident_id, partition=partition, category=fact.category.value, mode=fact.mode.value,
            source=f"{fact.source.kind.value}:{fact.source.id}", lat=loc.lat, lon=loc.lon, at=fact.occurred_at,
            recorded_at=fact.recorded_at, exercise=fact.exercise)
        key = corr.group_key(fact.mode.value, fact.category.value, self.rules, fact.exercise)
        window, notices = corr.observe(self.windows.get(key, corr.Window()), candidate, self.rules)
        self.windows[key] = window
        for n in notices:
            self.notice(n, now)

    def tick(self, now: datetime) -> None:
        """Every deadline due by `now`, each at its own time (as the worker's timer sends them)."""
        while True:
            due = sorted((s.next_deadline, k) for k, s in self.states.items()
                         if s.next_deadline is not None and s.next_deadline <= now and s.escalating)
            if not due:
                return
            at, incident = due[0]
            self._run([batch.Input(incident, lambda s: s)], self._partition(incident), at)

    def fact(self, fact: ev.IncidentEvent) -> None:
        self.tick(fact.recorded_at)
        incident = str(fact.incident_id)
        partition = self._partition(incident)
        offset = self.offsets[partition] = self.offsets.get(partition, -1) + 1
        report = fact if isinstance(fact, ev.IncidentReported) else None
        self._run([batch.Input(incident, lambda s, f=fact, o=offset, p=partition: fold(s, f, p, o), offset, report)],
                  partition, fact.recorded_at)


def run(facts: list[ev.IncidentEvent], rules: RuleSet, settle: timedelta = timedelta(hours=2)) -> Chain:
    chain = Chain(rules)
    for f in facts:
        chain.fact(f)
    if facts:
        chain.tick(max(f.recorded_at for f in facts) + settle)
    return chain
