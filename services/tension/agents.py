"""The faust agents. They only move data: decode, call the rules, send, record.

`rekey` reads the incidents topic and routes each live report, as a compact indicator, to
the by-ward topic partition that owns its ward (batched per partition, in source order).
`score` reads the by-ward topic, runs the rules per partition and publishes level changes.
A record nobody can read goes to the dead-letter topic; the partition keeps flowing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from services.shared.codec import PoisonRecord, decode, encode
from services.shared.deadletter import send_dead_letter
from services.shared.events import INCIDENT_FACTS, Category, IncidentReported
from services.shared.logging import get_logger
from services.tension import metrics
from services.tension.config import TensionConfig
from services.tension.rules import indicator, process, to_event, ward_partition
from services.tension.state import Indicator
from services.tension.tables import TensionTables

SERVICE = "tension"
log = get_logger("muster.tension")
_CATEGORIES = frozenset(c.value for c in Category)


@dataclass
class Wiring:
    app: faust.App
    config: TensionConfig
    incidents: Any  # faust TopicT
    by_ward: Any
    alerts: Any
    deadletter_topic: str
    tables: TensionTables
    ward_names: dict[str, str]
    declared_sources: int


class FaustSender:
    """send_dead_letter's Sender over faust's producer."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any:
        return await self.app.producer.send_and_wait(topic, key, value, None, None, headers)


async def dead_letter(w: Wiring, topic_id: str, message: Any, error: BaseException | str) -> None:
    await send_dead_letter(
        FaustSender(w.app), w.deadletter_topic, service=SERVICE, source_topic=message.topic,
        partition=message.partition, offset=message.offset, error=error, key=message.key,
        value=message.value, headers=message.headers,
    )
    metrics.DEAD_LETTERS.labels(topic_id).inc()
    log.warning("dead_letter", topic=message.topic, partition=message.partition, offset=message.offset,
                reason=str(error)[:300])


def read_fact(value: bytes | None):  # noqa: ANN201 - an incident fact
    fact = decode(value)
    if not isinstance(fact, INCIDENT_FACTS):
        raise PoisonRecord(f"event_type: {fact.event_type} does not belong on the incidents topic")
    return fact


def read_indicators(value: bytes | None, ward_names: dict[str, str]) -> list[Indicator]:
    try:
        rows = orjson.loads(value or b"")
        inds = [Indicator.unpack(row) for row in rows]
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise PoisonRecord(f"by-ward record: {exc}") from None
    for ind in inds:
        if ind.ward not in ward_names or ind.category not in _CATEGORIES:
            raise PoisonRecord(f"by-ward record: unknown ward {ind.ward!r} or category {ind.category!r}")
    return inds


def attach(w: Wiring) -> None:
    processing = w.config.processing

    @w.app.agent(w.incidents, name="tension-rekey", concurrency=1)
    async def rekey(stream):  # noqa: ANN001, ANN202 - faust agent
        async for batch in stream.take_events(processing.batch_max, within=processing.batch_within):
            sources = w.app.consumer.topic_partitions(w.incidents.get_topic_name()) or w.declared_sources
            routed: dict[int, list[list]] = defaultdict(list)
            for event in batch:
                message = event.message
                try:
                    fact = read_fact(message.value)
                except PoisonRecord as exc:
                    await dead_letter(w, "incidents", message, exc)
                    continue
                if not isinstance(fact, IncidentReported):
                    continue
                ind = indicator(fact, message.partition, sources)
                if ind is None:
                    metrics.EXERCISE.inc()
                    continue
                routed[ward_partition(ind.ward, processing.partitions)].append(ind.pack())
            for partition, rows in routed.items():
                await w.by_ward.send(key=str(partition).encode(), value=orjson.dumps(rows), partition=partition)

    @w.app.agent(w.by_ward, name="tension-score", concurrency=1)
    async def score(stream):  # noqa: ANN001, ANN202 - faust agent
        async for batch in stream.take_events(processing.batch_max, within=processing.batch_within):
            by_partition: dict[int, list[Indicator]] = defaultdict(list)
            for event in batch:
                try:
                    by_partition[event.message.partition].extend(read_indicators(event.message.value, w.ward_names))
                except PoisonRecord as exc:
                    await dead_letter(w, "tension.by_ward", event.message, exc)
            for partition, inds in by_partition.items():
                await score_partition(w, partition, inds)


async def score_partition(w: Wiring, partition: int, inds: list[Indicator]) -> None:
    clock = w.tables.clock(partition)
    wards = w.tables.ward_states({*clock.wards, *(i.ward for i in inds)})
    result = process(clock, wards, inds, w.config)
    metrics.INDICATORS.inc(result.counted)
    metrics.LATE.inc(result.late)
    metrics.DUPLICATES.inc(result.duplicates)
    for change in result.changes:
        alert = to_event(change, w.ward_names.get(change.ward, change.ward))
        encoded = encode(alert)
        await w.alerts.send(key=encoded.key, value=encoded.value, headers=encoded.headers)
        metrics.ALERTS.labels(change.new.value).inc()
        log.info("tension_level_changed", ward=change.ward, old=change.old.value, new=change.new.value,
                 score=change.score, window=change.window, event_id=str(alert.event_id))
    w.tables.save(partition, clock, wards)
    for code, state in wards.items():
        metrics.WARD_LEVEL.labels(code).set(("normal", "elevated", "high", "critical").index(state.level))
