"""The tension processor's work: the scoring agent (registered on the app in app.py). It
only moves data: decode, call the rules, send, record.

`tension-rekey` (rekey.py, a batch stage started with the app) routes each live report,
as a compact indicator, to the by-ward topic partition that owns its ward. `score` reads
the by-ward topic, runs the rules per partition and publishes level changes. A record
nobody can read goes to the dead-letter topic; the partition keeps flowing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from services.shared.codec import PoisonRecord, editions
from services.shared.events import Category, TensionLevel
from services.shared.logging import get_logger
from services.shared.processor import FaustSink, ensure_app_topics, sink_for
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from services.tension import metrics
from services.tension.config import TensionConfig
from services.tension.rules import process, to_event
from services.tension.state import ANSWER, CALENDAR, IDLE, LIVE, MODES, REPORT, Indicator
from services.tension.tables import TensionTables

SERVICE = "tension"
log = get_logger("muster.tension")
_CATEGORIES = frozenset(c.value for c in Category)


def read_indicators(value: bytes | None, ward_names: dict[str, str]) -> list[Indicator]:
    try:
        rows = orjson.loads(value or b"")
        inds = [Indicator.unpack(row) for row in rows]
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise PoisonRecord(f"by-ward record: {exc}") from None
    for ind in inds:
        if ind.kind in (IDLE, CALENDAR, ANSWER):
            if ind.kind == ANSWER and not isinstance((ind.extra or {}).get("key"), str):
                raise PoisonRecord("by-ward record: an answer without its key")
            continue
        report = ind.kind == REPORT
        if (report or ind.ward is not None) and ind.ward not in ward_names:
            raise PoisonRecord(f"by-ward record: unknown ward {ind.ward!r}")
        if (report or ind.category is not None) and ind.category not in _CATEGORIES:
            raise PoisonRecord(f"by-ward record: unknown category {ind.category!r}")
    return inds


@dataclass
class Tension:
    app: faust.App
    settings: Settings
    config: TensionConfig
    incidents_topic: str
    rekey_group: str
    by_ward: Any  # faust TopicT
    alerts: Any
    exercise_alerts: Any  # exercise and test alerts: never the live topic
    deadletter_topic: str
    tables: TensionTables
    ward_names: dict[str, str]
    declared_sources: int
    partitions: int
    catalog: TopicCatalog
    sink: FaustSink = field(init=False)

    def __post_init__(self) -> None:
        self.sink = sink_for(self.app, SERVICE, self.deadletter_topic, metrics.DEAD_LETTERS)

    async def prepare(self) -> None:
        """The internal topics of topics.yaml: the by-ward topic and the tables' changelogs."""
        await ensure_app_topics(self.settings, self.catalog, SERVICE)

    def describe(self) -> dict[str, Any]:
        return {}

    async def score(self, stream) -> None:  # a faust stream
        processing = self.config.processing
        async for batch in stream.take_events(processing.batch_max, within=processing.batch_within):
            by_scope: dict[tuple[int, str], list[Indicator]] = defaultdict(list)
            for event in batch:
                try:
                    for ind in read_indicators(event.message.value, self.ward_names):
                        if ind.kind == IDLE:  # which source partitions are read to their end: every mode's clock
                            for mode in MODES:
                                if mode == LIVE or (event.message.partition, mode) in by_scope or \
                                        self.tables.has_clock(event.message.partition, mode):
                                    by_scope[event.message.partition, mode].append(ind)
                        else:
                            by_scope[event.message.partition, ind.mode].append(ind)
                except PoisonRecord as exc:
                    await self.sink.dead_letter(event.message, exc, "tension.by_ward")
            for (partition, mode), inds in by_scope.items():
                await self.score_partition(partition, inds, mode)

    async def score_partition(self, partition: int, inds: list[Indicator], mode: str = LIVE) -> None:
        """One by-ward partition's batch in one mode: live, or an exercise or test scored apart."""
        clock = self.tables.clock(partition, mode)
        wards = self.tables.ward_states({*clock.wards, *(i.ward for i in inds if i.ward is not None)}, mode)
        result = process(clock, wards, inds, self.config, partition=partition, partitions=self.partitions,
                         mode=mode)
        metrics.INDICATORS.inc(result.counted)
        metrics.LATE.inc(result.late)
        metrics.DUPLICATES.inc(result.duplicates)
        metrics.MOVED.inc(result.moved)
        metrics.WITHDRAWN.inc(result.withdrawn)
        for target, rows in result.outbox.items():  # a report moving to a ward another partition owns
            await self.by_ward.send(key=str(target).encode(), value=orjson.dumps([r.pack() for r in rows]),
                                    partition=target)
        live = mode == LIVE
        for change in result.changes:
            alert = to_event(change, self.ward_names.get(change.ward, change.ward), mode)
            topic = self.alerts if live else self.exercise_alerts
            for encoded in editions(alert):  # one record; two while an older schema version is still produced
                await topic.send(key=encoded.key, value=encoded.value, headers=encoded.headers)
            if live:
                metrics.ALERTS.labels(change.new.value).inc()
                metrics.EARLY.inc(int(change.early))
            log.info("tension.level_changed", ward=change.ward, old=change.old.value, new=change.new.value,
                     score=change.score, window=change.window, event_id=str(alert.event_id), mode=mode)
        self.tables.save(partition, clock, wards, mode)
        if live:
            for code, state in wards.items():
                metrics.WARD_LEVEL.labels(code).set(TensionLevel(state.level).rank)
