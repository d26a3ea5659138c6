"""The escalation processor's work: faust agents and the deadline timer (registered on the
app in app.py). They decode, call the pure rules, send, record.

Inputs of the incident agent: the internal packed topic (the incidents topic's facts,
packed per source partition by the pre-stage in packer.py, on the same partition number)
and the internal control topic (deadline ticks and corroboration notices, sent to the
incident's own partition), so one agent with concurrency 1 owns every change to an
incident's state. A pack is processed as one batch (batch.py): each incident's state is
looked up once (the most recently used parsed states are cached, `STATE_CACHE`, dropped on
every rebalance; the table holds every state as its record), the sends
of the whole batch are awaited together, and each changed incident is written to the table
once. Outputs are acknowledged by Kafka *before* the state records them: a crash in
between replays the pack and re-sends the same deterministic event ids, never loses one;
facts the state already holds (by source offset) are skipped on replay.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import faust
from faust.exceptions import PartitionsMismatch
from pydantic import ValidationError

from services.escalation import batch
from services.escalation import corroboration as corr
from services.escalation import metrics
from services.escalation.config import RuleSet
from services.escalation.facts import NotRead, read_fact
from services.escalation.offsets import MARKER_KEY, ensure_starts
from services.escalation.packing import unpack
from services.escalation.outputs import Delivery
from services.escalation.retention import due_releases, release_at, releasable
from services.escalation.state import (
    RULE_SET_PREFIX, IncidentState, RuleSets, apply_notice, fold, record, rule_set_key, rule_set_name,
)
from services.escalation.store import ChangelogTable, StateStore
from services.shared import codec
from services.shared.admission import Refused
from services.shared.events import EscalationRaised, EscalationStoodDown, IncidentReported, utcnow
from services.shared.logging import get_logger
from services.shared.processor import changelog_unknown, ensure_app_topics, refresh_metadata, sink_for
from services.shared.settings import Settings
from services.shared.stage import Sink, in_flight
from services.shared.topics import TopicCatalog

log = get_logger("muster.escalation")
SERVICE = "escalation"
RETRIES = (0.5, 1.0, 2.0)
# Changelog records faust holds before applying them to a table while it recovers (its default
# is 1,000). A corroboration window is one record of up to ~400 KB (MAX_CANDIDATES), written
# whole for every candidate: 1,000 of them held at once was the 250 MB step of RSS at every
# restart of the soak, kept by the allocator after the recovery (bench/escalation_recovery.py).
WINDOWS_RECOVERY_BUFFER = 10
# Parsed states kept (the most recently used): a miss parses the state's record in the table (a
# 1-2 KB record, ~50 us). Unbounded, the cache held every state the table did, 6.8 KB each: with the
# incidents left open for good the worker's RSS grew with them (the soaks of 2026-12-03).
STATE_CACHE = 1024
METADATA_WAIT = 1.0  # between metadata refreshes while a table's changelog is unknown to the worker
POISON = (codec.PoisonRecord, ValidationError, ValueError)


@dataclass(frozen=True, slots=True)
class Row:
    """One fact of a pack, as the dead-letter topic needs it: where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple = ()


@dataclass
class Escalation:
    app: faust.App
    settings: Settings
    catalog: TopicCatalog
    rules: RuleSet
    partitions: int = 0
    index: dict[bytes, tuple[datetime, int]] = field(default_factory=dict)
    ticked: dict[bytes, float] = field(default_factory=dict)
    expiry: dict[bytes, tuple[datetime, int]] = field(default_factory=dict)  # finished: when to release
    released: dict[bytes, float] = field(default_factory=dict)  # release notices sent, not yet processed
    cache: OrderedDict[bytes, IncidentState] = field(default_factory=OrderedDict)  # the last used, STATE_CACHE
    pinned: set[bytes] = field(default_factory=set)  # the table's rule-set records (rule_set_key)
    dirty: bool = True
    sink: Sink | None = None  # the sender of every output (default: the app's, services/shared/processor.py)
    store: StateStore | None = None  # the incident states (default: the table on its changelog, store.py)
    rule_sets: RuleSets = field(init=False)  # the states read back share the rule sets they pin

    def __post_init__(self) -> None:
        self.rule_sets = RuleSets(self.rules, lookup=self._rule_set_record)
        self.partitions = self.catalog.spec_of("incidents").partitions
        self.incidents_name = self.catalog.name("incidents")
        self.control_name = self.catalog.name("escalation.control")
        self.packed_name = self.catalog.name("escalation.packed")
        self.pack_group = f"{self.app.conf.id}-pack"
        self.candidates_name = self.catalog.name("escalation.candidates")
        self.deadletter_name = self.catalog.name("deadletter")
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.inputs = self.app.topic(self.packed_name, self.control_name, **raw)
        self.candidates = self.app.topic(self.candidates_name, partitions=self.partitions, internal=True, **raw)
        raw_table = {"partitions": self.partitions, "key_type": bytes, "value_type": bytes}  # raw changelog records
        self.table = self.app.Table("incident-state", **raw_table)
        self.windows = self.app.Table("corroboration-windows", recovery_buffer_size=WINDOWS_RECOVERY_BUFFER,
                                      **raw_table)
        self.changelogs = [t.changelog_topic.get_topic_name() for t in (self.table, self.windows)]
        self.keep = timedelta(seconds=self.settings.escalation_closed_retention_seconds)
        if self.sink is None:
            self.sink = sink_for(self.app, SERVICE, self.deadletter_name, metrics.DEAD_LETTERS)
        if self.store is None:
            self.store = ChangelogTable(self.table, self.sink)

    def internal_topics(self) -> list[str]:
        return [self.packed_name, self.control_name, self.candidates_name]

    async def prepare(self) -> None:
        """The internal topics of topics.yaml (the packed, control and corroboration topics are
        co-partitioned with the incidents topic), with a committed start for the faust group on
        each partition its agents read (offsets.py says why)."""
        await ensure_app_topics(self.settings, self.catalog, SERVICE)
        await ensure_starts(self.settings, self.app.conf.id, self.internal_topics(), self.partitions)

    def describe(self) -> dict[str, Any]:
        return {"rule_set_version": self.rules.version}

    async def on_rebalance(self, *_args, **_kwargs) -> None:
        """Partitions may have moved: parsed states and the deadline index are rebuilt from the table."""
        self.cache.clear()
        self.dirty = True

    # --- agents -------------------------------------------------------------------------

    async def incident_agent(self, stream) -> None:
        async for event in stream.events():
            msg = event.message
            if msg.key == MARKER_KEY:
                continue
            if msg.topic == self.packed_name:
                await self._guarded(msg, self.on_pack, "escalation.packed")
            else:
                await self._guarded(msg, self.on_notice, "escalation.control")

    async def candidate_agent(self, stream) -> None:
        async for event in stream.events():
            if event.message.key != MARKER_KEY:
                await self._guarded(event.message, self.on_candidate, "escalation.candidates")

    async def _guarded(self, msg, handler, input_name: str) -> None:
        """One record: poison goes to the dead-letter topic; nothing stops the partition. A table
        whose changelog the worker's metadata does not know yet is the worker's state, not the
        record's fault: the metadata is refreshed and the record tried again, never dead-lettered
        (a corroboration candidate dead-lettered so left its report without a verdict for good)."""
        attempt = 0
        while True:
            try:
                await handler(msg)
                return
            except PartitionsMismatch as exc:
                unknown = [name for name in self.changelogs if changelog_unknown(self.app, name)]
                if unknown:  # not the record's fault: no attempt counted
                    log.warning("escalation.metadata_behind", topic=msg.topic, partition=msg.partition,
                                offset=msg.offset, changelogs=unknown)
                    await refresh_metadata(self.app)
                    await asyncio.sleep(METADATA_WAIT)
                    continue
                error: Exception = codec.detached(exc)  # a real mismatch (a topic created with other partitions): as any error
            except POISON as exc:
                await self.dead_letter(msg, exc, input_name)
                return
            except Exception as exc:  # noqa: BLE001 - classify: retry, then dead-letter; never crash
                error = codec.detached(exc)  # kept past the block: no frames (codec.detached)
            log.warning("escalation.retry", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                        attempt=attempt + 1, error_class=type(error).__name__)
            if attempt == len(RETRIES):
                await self.dead_letter(msg, error, input_name)
                return
            await asyncio.sleep(RETRIES[attempt])
            attempt += 1

    async def dead_letter(self, msg: Any, exc: BaseException, input_name: str) -> None:
        await self.sink.dead_letter(msg, exc, input_name)
        if isinstance(exc, Refused):
            metrics.IGNORED.labels(exc.refusal.reason).inc()

    async def dead_letter_all(self, dead: list[tuple[Any, BaseException]]) -> None:
        """A pack's dead letters from the incidents topic, sent together: one after the other, each
        awaiting its acknowledgement, a poison storm's packs held the worker 3,000 packs behind
        (the soak of 2026-12-03, docs/chaos.md)."""
        for part in in_flight(dead):
            await asyncio.gather(*(self.dead_letter(record, exc, "incidents") for record, exc in part))

    async def on_pack(self, msg) -> None:
        """The facts of one pack: decoded one by one (poison dead-lettered), processed as a batch."""
        partition = msg.partition
        inputs: list[batch.Input] = []
        rows: dict[int, Row] = {}
        unreadable: list[tuple[Row, BaseException]] = []
        for offset, key, text in unpack(msg.value):
            row = rows[offset] = Row(self.incidents_name, partition, offset, None if key is None else key.encode(),
                                     text.encode())
            try:
                fact = read_fact(text)
            except codec.PoisonRecord as exc:
                unreadable.append((row, codec.detached(exc)))
                continue
            if isinstance(fact, NotRead):
                continue
            report = fact if fact.event_type == "IncidentReported" else None
            change = lambda s, f=fact, o=offset: fold(s, f, partition, o)  # noqa: E731
            inputs.append(batch.Input(str(fact.incident_id), change, offset, report))
        await self.dead_letter_all(unreadable)
        try:
            await self.process(inputs, partition, rows)
        except POISON:  # a fact the rules cannot take: find it, one fact at a time (replays are skipped)
            for item in inputs:
                try:
                    await self.process([item], partition, rows)
                except POISON as exc:
                    await self.dead_letter(rows[item.offset], exc, "incidents")
        metrics.EVENTS.labels(input="incidents").inc(len(rows))

    async def on_notice(self, msg) -> None:
        notice = corr.Notice.model_validate_json(msg.value)
        metrics.EVENTS.labels(input="control").inc()
        if notice.kind == "release":
            await self.release(str(notice.incident_id).encode(), msg.partition)
            return
        await self.process([batch.Input(str(notice.incident_id), lambda s: apply_notice(s, notice), notice=notice)],
                           msg.partition)

    def _load(self, incident: str) -> IncidentState | None:
        key = incident.encode()
        state = self.cache.get(key)
        if state is not None:
            self.cache.move_to_end(key)
            return state
        raw = self.store.get(key)
        if raw is None:
            return None
        state = self.rule_sets.parse(raw)
        self._cache(key, state)
        return state

    def _cache(self, key: bytes, state: IncidentState) -> None:
        self.cache[key] = state
        self.cache.move_to_end(key)
        while len(self.cache) > STATE_CACHE:
            self.cache.popitem(last=False)

    def _rule_set_record(self, name: str) -> bytes | None:
        """A named rule set's record, from any partition of the table that has it."""
        for partition in range(self.partitions):
            raw = self.store.get(rule_set_key(name, partition))
            if raw is not None:
                return raw
        return None

    def _pins(self, states, partition: int) -> list[tuple[bytes, bytes]]:
        """The records of the rule sets these states name that `partition`'s changelog is not known to
        hold: written before the states, so a worker recovering the partition can read every state
        on it. (Known: recovered, or written and acknowledged; after a restart, before the first
        rebuild, a rule set is written once more, 4 KB a partition.)"""
        out: dict[bytes, bytes] = {}
        for state in states:
            if state.rule_set is not None:
                key = rule_set_key(rule_set_name(state.rule_set), partition)
                if key not in self.pinned and key not in out:
                    out[key] = state.rule_set.model_dump_json().encode()
        return list(out.items())

    def _state_count(self) -> int:
        return len(self.store) - len(self.pinned)

    async def process(self, inputs: list[batch.Input], partition: int, rows: dict | None = None) -> None:
        """Decide the batch; send everything it produces; only then record the new states. Facts
        the shared admission rule refused go to the dead-letter topic (`rows`: where they came from)."""
        if not inputs:
            return
        out = batch.process(inputs, self._load, self.rules, partition=partition,
                            sender=self.settings.escalation_cap_sender, contact=self.settings.escalation_cap_contact,
                            now=utcnow())
        await self.dead_letter_all([(rows[offset], refused) for offset, refused in out.refused
                                    if rows is not None and offset in rows])
        over = {c.incident_id for c in out.closed}
        nominated = {r.incident_id for r in out.nominated}
        sends = [self._publish(d) for d in out.produced]
        sends += [self._nominate(r, partition, closed=r.incident_id in over) for r in out.nominated]
        sends += [self._send(self.candidates_name, self._group(c.mode, c.category, c.exercise),
                             c.model_dump_json().encode()) for c in out.closed if c.incident_id not in nominated]
        sends += [self._send(self.control_name, str(n.incident_id).encode(), n.model_dump_json().encode(),
                             partition=n.partition) for n in out.notices]
        if sends:
            await asyncio.gather(*sends)
        # The outputs are acknowledged: now the states, in the store and on its changelog
        # (store.ChangelogTable), acknowledged before the next batch.
        pins = self._pins(out.states.values(), partition)
        changed = list(pins)
        for incident, state in out.states.items():
            key = incident.encode()
            changed.append((key, record(state)))
            self._cache(key, state)
            self._track(key, state)
        await self.store.write(changed, partition)
        self.pinned.update(key for key, _ in pins)
        for d in out.produced:
            if d.agency is None:
                e = d.event
                log.info("escalation.produced", event_type=e.event_type, event_id=str(e.event_id),
                         incident_id=str(e.incident_id), level=getattr(e, "level", None), mode=e.mode.value,
                         ward=getattr(e, "ward_code", None), partition=partition)

    async def release(self, key: bytes, partition: int) -> None:
        """A finished incident past its retention leaves the table, with a tombstone on the changelog
        (compaction then drops its records, so a restart recovers the same bounded table). Run by the
        incident agent, in order with the facts: a fact that came first and revived it keeps it."""
        if not releasable(self._load(key.decode()), utcnow(), self.keep):
            self.released.pop(key, None)
            return
        self.cache.pop(key, None)
        self._untrack(key)
        await self.store.remove(key, partition)
        metrics.RELEASED.inc()
        metrics.STATES.set(self._state_count())

    async def on_candidate(self, msg) -> None:
        candidate = corr.Candidate.model_validate_json(msg.value)
        raw = self.windows.get(msg.key)
        window = corr.Window.model_validate_json(raw) if raw is not None else corr.Window()
        if len(window.candidates) >= corr.MAX_CANDIDATES:
            metrics.WINDOW_FULL.inc()
        new, notices = corr.observe(window, candidate, self.rules)
        if notices:
            await asyncio.gather(*(self._send(self.control_name, str(n.incident_id).encode(),
                                              n.model_dump_json().encode(), partition=n.partition) for n in notices))
        if new != window:
            self.windows[msg.key] = new.model_dump_json().encode()

    # --- timer --------------------------------------------------------------------------

    async def tick(self) -> None:
        """Deadlines that fell due (also while the worker was down) become ticks to their incident."""
        if self.app.rebalancing or getattr(self.app, "in_recovery", False):
            self.dirty = True
            return
        if self.dirty:
            self._rebuild()
        now, clock = utcnow(), time.monotonic()
        quiet = max(5.0, 5 * self.settings.escalation_tick_seconds)
        due = [(k, p) for k, (at, p) in self.index.items() if at <= now and clock - self.ticked.get(k, -quiet) >= quiet]
        for key, _ in due:
            self.ticked[key] = clock
        expired = due_releases(self.expiry, self.released, now)
        for key, _ in expired:
            self.released[key] = clock
        results = await asyncio.gather(*(
            self._send(self.control_name, key, corr.Notice(kind=kind, incident_id=key.decode(),
                                                           partition=partition).model_dump_json().encode(),
                       partition=partition)
            for kind, keys in (("deadline", due), ("release", expired)) for key, partition in keys
        ), return_exceptions=True)
        failed = [k for (k, _), r in zip(due + expired, results) if isinstance(r, BaseException)]
        for key in failed:  # not on its way: due again at the next tick
            self.ticked.pop(key, None)
            self.released.pop(key, None)
        if failed:
            log.warning("escalation.notices_not_sent", count=len(failed),
                        error_class=type(next(r for r in results if isinstance(r, BaseException))).__name__)
        metrics.PENDING_DEADLINES.set(len(self.index))
        metrics.STATES.set(self._state_count())

    def _rebuild(self) -> None:
        self.index.clear()
        self.expiry.clear()
        self.released.clear()  # notices sent before a restart or a rebalance are sent again
        records = list(self.store.items())
        self.pinned = {key for key, _ in records if key.startswith(RULE_SET_PREFIX)}
        for key, raw in records:
            if key not in self.pinned:
                state = self.rule_sets.parse(raw)
                self._cache(key, state)
                self._track(key, state)
        self.dirty = False
        log.info("escalation.deadlines_indexed", pending=len(self.index), states=self._state_count(),
                 releasing=len(self.expiry))

    def _track(self, key: bytes, s: IncidentState) -> None:
        if s.next_deadline is not None and s.escalating and s.partition is not None:
            self.index[key] = (s.next_deadline, s.partition)
        else:
            self.index.pop(key, None)
            self.ticked.pop(key, None)
        at = release_at(s, self.keep)
        if at is not None and s.partition is not None:
            self.expiry[key] = (at, s.partition)
        else:
            self.expiry.pop(key, None)
            self.released.pop(key, None)

    def _untrack(self, key: bytes) -> None:
        for index in (self.index, self.ticked, self.expiry, self.released):
            index.pop(key, None)

    # --- sending ------------------------------------------------------------------------

    async def _send(self, topic: str, key: bytes, value: bytes, partition: int | None = None, headers=None):
        return await (await self.sink.send(topic, key, value, partition=partition, headers=headers))

    async def _publish(self, d: Delivery) -> None:
        """One event to one recipient's topic of the event's mode (live, exercise or test: never a live
        topic for an exercise or a test)."""
        e = d.event
        topic = self.catalog.escalation_topic(d.agency.value if d.agency else None, mode=e.mode.value)
        for enc in codec.editions(e):  # one record; two while an older schema version is still produced
            await self._send(topic, enc.key, enc.value, headers=enc.headers)
        if isinstance(e, EscalationRaised):
            if d.agency is not None:
                metrics.ESCALATIONS.labels(level=str(e.level), agency=d.agency.value).inc()
            else:
                metrics.DECISION_LATENCY.observe(max(0.0, (utcnow() - e.occurred_at).total_seconds()))
        elif isinstance(e, EscalationStoodDown) and d.agency is None:
            metrics.STAND_DOWNS.inc()

    async def _nominate(self, fact: IncidentReported, partition: int, closed: bool = False) -> None:
        """A report that corroboration rules cover goes to the worker that sees its whole kind
        (`closed`: the incident was over within the same pack, so it leads nothing)."""
        loc = fact.location
        candidate = corr.Candidate(
            incident_id=fact.incident_id, partition=partition, category=fact.category.value, mode=fact.mode.value,
            source=corr.source_of(fact), lat=loc.lat, lon=loc.lon, at=fact.occurred_at,
            recorded_at=fact.recorded_at, exercise=fact.exercise, closed=closed,
        )
        key = self._group(fact.mode.value, fact.category.value, fact.exercise)
        await self._send(self.candidates_name, key, candidate.model_dump_json().encode())

    def _group(self, mode: str, category: str, exercise: str | None) -> bytes:
        return corr.group_key(mode, category, self.rules, exercise).encode()

