"""The casework processor's work: the case agent and the clock (registered in app.py).
They only move data: decode, call the rules, send, record.

`casework-rekey` (rekey.py) routes each fact casework counts, as case inputs, to the
partition of the by-case topic that owns the case. `cases` reads that topic, folds each
input into its case (rules.apply), publishes what the case raised on the alerts topic and
the case's picture once per batch (rules.snapshot) on the compacted cases topic, and writes the case back to the
table once per batch. `tick` asks every case whose next clock has come (rules.due) and
publishes the warnings. A record nobody can read goes to the dead-letter topic.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import faust
import orjson

from services.casework import metrics, rules
from services.casework.config import CaseworkConfig
from services.casework.inputs import CaseInput
from services.casework.rekey import case_partition
from services.casework.state import CaseState
from services.shared.codec import PoisonRecord, encode
from services.shared.events import CaseworkCaseChanged, Event
from services.shared.logging import get_logger
from services.shared.processor import FaustSink, ensure_app_topics, sink_for
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog

SERVICE = "casework"
log = get_logger("muster.casework")
RESCAN_S = 300.0  # the whole table is re-read for pending clocks this often (and after a restart)


def read_inputs(value: bytes | None) -> list[CaseInput]:
    try:
        return [CaseInput.unpack(row) for row in orjson.loads(value or b"")]
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise PoisonRecord(f"by-case record: {exc}") from None


@dataclass
class Casework:
    app: faust.App
    settings: Settings
    config: CaseworkConfig
    incidents_topic: str
    rekey_group: str
    by_case: Any  # faust TopicT
    alerts: Any
    cases_topic: Any
    deadletter_topic: str
    table: Any  # services.shared.tables.PinnedTable: case key -> CaseState JSON
    partitions: int
    catalog: TopicCatalog
    sink: FaustSink = field(init=False)
    _due: dict[str, int] = field(default_factory=dict)  # case key -> when its next clock warns
    _scanned_at: float = 0.0

    def __post_init__(self) -> None:
        self.sink = sink_for(self.app, SERVICE, self.deadletter_topic, metrics.DEAD_LETTERS)

    async def prepare(self) -> None:
        """The internal topics of topics.yaml: the by-case topic and the table's changelog."""
        await ensure_app_topics(self.settings, self.catalog, SERVICE)

    def describe(self) -> dict[str, Any]:
        return {"partitions": self.partitions}

    def load(self, key: str) -> CaseState | None:
        raw = self.table.get(key)
        return CaseState.loads(raw) if raw is not None else None

    def save(self, key: str, state: CaseState) -> None:
        self.table.put(key, state.dumps(), case_partition(key, self.partitions))
        due = rules.next_due(state, self.config)
        if due is None:
            self._due.pop(key, None)
        else:
            self._due[key] = due

    async def publish(self, events: list[Event]) -> None:
        """Alerts as they came; of a case's pictures only its newest (the read side keeps no other)."""
        newest: dict[Any, CaseworkCaseChanged] = {}
        for event in events:
            if isinstance(event, CaseworkCaseChanged):
                newest[event.case_id] = event
                continue
            encoded = encode(event)
            await self.alerts.send(key=encoded.key, value=encoded.value, headers=encoded.headers)
            metrics.ALERTS.labels(event.event_type).inc()
            log.info("casework.alert", event_type=event.event_type, case_id=str(event.case_id),
                     event_id=str(event.event_id), mode=event.mode.value)
        for event in newest.values():
            encoded = encode(event)
            await self.cases_topic.send(key=encoded.key, value=encoded.value, headers=encoded.headers)

    async def cases(self, stream) -> None:
        processing = self.config.processing
        async for batch in stream.take_events(processing.batch_max, within=processing.batch_within):
            items: list[tuple[int, int, CaseInput]] = []
            for event in batch:
                message = event.message
                try:
                    items += [(message.offset, i, item) for i, item in enumerate(read_inputs(message.value))]
                except PoisonRecord as exc:
                    await self.sink.dead_letter(message, exc, "casework.by_case")
            await self.apply(items)

    async def apply(self, items: list[tuple[int, int, CaseInput]]) -> None:
        """One batch: each case loaded once; what it has already applied (a redelivery after a
        restart) dropped; the rest applied in event-time order, whatever the order the incidents
        partitions interleaved in, so a live run and a replay of the same log agree."""
        states: dict[str, CaseState | None] = {}
        fresh: list[tuple[int, int, CaseInput]] = []
        for offset, index, item in items:
            key = item.key
            if key not in states:
                states[key] = self.load(key)
            state = states[key]
            if state is not None and state.replayed(offset, index):
                metrics.REPLAYS.inc()
                continue
            fresh.append((offset, index, item))
        out: list[Event] = []
        last: dict[str, list[int]] = {}
        recorded: dict[str, int] = {}  # case key -> the newest recorded_at it applied (its picture's time)
        for offset, index, item in sorted(fresh, key=lambda t: (t[2].at, t[2].recorded_at, t[2].incident_id, t[0], t[1])):
            key = item.key
            last[key] = max(last.get(key, [offset, index]), [offset, index])
            try:
                states[key], produced = rules.apply(states[key], item, self.config)
            except rules.CaseworkRejected as exc:
                metrics.REJECTED.inc()
                log.warning("casework.rejected", kind=item.kind, op=item.op, incident_id=item.incident_id,
                            reason=str(exc)[:300])
                continue
            out += produced
            recorded[key] = max(recorded.get(key, item.recorded_at), item.recorded_at)
            metrics.INPUTS.labels(item.kind).inc()
        out += [rules.snapshot(states[key], at, self.config) for key, at in recorded.items()]
        await self.publish(out)
        for key, position in last.items():
            state = states[key]
            if state is not None:
                state.position = position
                self.save(key, state)

    async def tick(self) -> None:
        """Send the warnings of every clock that has come (the whole table re-read now and then)."""
        now = datetime.now(timezone.utc)
        if time.monotonic() - self._scanned_at > RESCAN_S:
            self._scanned_at = time.monotonic()
            self._due = {}
            counts: dict[str, int] = defaultdict(int)
            for key, raw in list(self.table.items()):
                state = CaseState.loads(raw)
                counts[state.kind] += 1
                due = rules.next_due(state, self.config)
                if due is not None:
                    self._due[key] = due
            for kind, n in counts.items():
                metrics.CASES.labels(kind).set(n)
        t = int(now.timestamp())
        for key in [k for k, due in self._due.items() if due <= t]:
            state = self.load(key)
            if state is None:
                self._due.pop(key, None)
                continue
            warnings = rules.due(state, now, self.config)
            for warning in warnings:
                metrics.WARNINGS.labels(warning.clock.name).inc()
            await self.publish([*warnings, rules.snapshot(state, t, self.config)] if warnings else [])
            self.save(key, state)
