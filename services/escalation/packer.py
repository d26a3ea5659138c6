"""escalation-pack: the incidents topic, packed per source partition, in batches.

faust's per-event stream machinery alone held one escalation worker near 600 facts/s. This
stage is stateless, so it is a services.shared.stage.BatchStage (group `<app id>-pack`):
`getmany` batches, each source partition's facts packed (packing.py) onto
the same partition number of the internal packed topic, which the incident agent reads,
so one owner per incident partition still holds its state. All sends are awaited
together, and only then the batch's offsets committed: at least once; a fact packed twice
after a crash is recognised by the agent by its source offset. Records that are not even
text are dead-lettered here with their source topic, partition and offset.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiokafka.structs import TopicPartition

from services.escalation import metrics
from services.escalation.packing import pack
from services.shared.stage import BatchStage

if TYPE_CHECKING:
    from services.escalation.agents import Escalation

BATCH_MAX = 5000
WITHIN_MS = 20


class Packer(BatchStage):
    """Started with the faust app, stopped with it."""

    def __init__(self, escalation: Escalation, **kwargs: Any) -> None:
        self.e = escalation
        super().__init__(escalation.settings, escalation.incidents_name, escalation.pack_group, batch_max=BATCH_MAX,
                         within_ms=WITHIN_MS * 5, consumer_options={
                             "fetch_max_wait_ms": WITHIN_MS, "max_partition_fetch_bytes": 4 * 1024 * 1024}, **kwargs)

    async def handle(self, batch: dict[TopicPartition, list]) -> None:
        producer = self.e.app.producer
        pending, dead = [], []
        for tp, records in batch.items():
            packs, unreadable = pack(records)
            dead += unreadable
            for value in packs:
                pending.append(await producer.send(self.e.packed_name, str(tp.partition).encode(), value,
                                                   tp.partition, None, None))
        for record, exc in dead:
            await self.e.dead_letter(record, exc, "incidents")
        await asyncio.gather(*pending)
        metrics.PACKED.inc(sum(len(records) for records in batch.values()))
