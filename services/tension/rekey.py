"""tension-rekey: the incidents topic, re-keyed by ward onto the by-ward topic, in batches.

faust's per-event stream machinery alone held one worker under 5,000 events/s. This stage is
stateless, so it is a services.shared.stage.BatchStage (group `<app id>-rekey`): `getmany`
batches, facts tension does not read skipped on their `event_type` header, the rest decoded
narrowly (facts.py), indicators routed in source order to the by-ward partition that owns
their ward, all sends awaited together, and only then the batch's offsets committed (at
least once: a record seen twice after a crash is recognised by the scorer, by incident id).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import orjson
from aiokafka.structs import TopicPartition

from services.shared.codec import PoisonRecord
from services.shared.events import Mode
from services.shared.stage import BatchStage
from services.tension import metrics
from services.tension.facts import read_fact
from services.tension.rules import indicator, ward_partition
from services.tension.wiring import Wiring, dead_letter

ROWS_PER_RECORD = 1000  # indicators per by-ward record: well under the broker's message size limit


def route(w: Wiring, records: list, sources: int, dead: list) -> dict[int, list[list]]:
    """Packed indicators per by-ward partition, in source order; unreadable records into `dead`."""
    partitions = w.config.processing.partitions
    routed: dict[int, list[list]] = defaultdict(list)
    for record in records:
        try:
            fact = read_fact(record.value, record.headers)
        except PoisonRecord as exc:
            dead.append((record, exc))
            continue
        if fact is None:
            continue
        ind = indicator(fact, record.partition, sources)
        if ind is None:
            continue
        if fact.mode is not Mode.LIVE:
            metrics.EXERCISE.inc()
        if ind.ward is None:  # an update: the partition holding its report applies it
            for partition in range(partitions):
                routed[partition].append(ind.pack())
        else:
            routed[ward_partition(ind.ward, partitions)].append(ind.pack())
    return routed


class Rekey(BatchStage):
    """The re-keying stage; started with the faust app (after table recovery), stopped with it."""

    def __init__(self, wiring: Wiring, **kwargs: Any) -> None:
        self.w = wiring
        processing = wiring.config.processing
        super().__init__(wiring.settings, wiring.incidents_topic, wiring.rekey_group, batch_max=processing.batch_max,
                         within_ms=int(processing.batch_within * 1000), **kwargs)

    async def handle(self, batch: dict[TopicPartition, list]) -> None:
        sources = len(self.consumer.partitions_for_topic(self.topic) or ()) or self.w.declared_sources
        dead: list = []
        routed: dict[int, list[list]] = defaultdict(list)
        for records in batch.values():
            for partition, rows in route(self.w, records, sources, dead).items():
                routed[partition].extend(rows)
        producer = self.w.app.producer
        pending = []
        for partition, rows in routed.items():
            for i in range(0, len(rows), ROWS_PER_RECORD):
                pending.append(await producer.send(
                    self.w.by_ward.get_topic_name(), str(partition).encode(), orjson.dumps(rows[i: i + ROWS_PER_RECORD]),
                    partition, None, None,
                ))
        for record, exc in dead:
            await dead_letter(self.w, "incidents", record, exc)
        await asyncio.gather(*pending)
