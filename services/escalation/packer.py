"""escalation-pack: the incidents topic, packed per source partition, in batches.

A faust agent pays faust's per-event stream machinery (several event-loop turns per
record); that alone held one escalation worker near 600 facts/s. This stage is stateless,
so it runs inside the faust app as a service with its own aiokafka consumer (group
`<app id>-pack`): `getmany` batches, each source partition's facts packed (packing.py) onto
the same partition number of the internal packed topic, which the incident agent reads,
so one owner per incident partition still holds its state. All sends are awaited
together, and only then the batch's offsets committed: at least once; a fact packed twice
after a crash is recognised by the agent by its source offset. Records that are not even
text are dead-lettered here with their source topic, partition and offset.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import TopicPartition
from mode import Service

from services.escalation import metrics
from services.escalation.packing import pack
from services.shared.kafka import make_consumer
from services.shared.logging import get_logger

if TYPE_CHECKING:
    from services.escalation.agents import Escalation

log = get_logger("muster.escalation")
BATCH_MAX = 5000
WITHIN_MS = 20


class Packer(Service):
    """Started with the faust app, stopped with it."""

    def __init__(self, escalation: Escalation, **kwargs: Any) -> None:
        self.e = escalation
        self.consumer = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.consumer = make_consumer(
            self.e.settings, self.e.incidents_name, group_id=self.e.pack_group, max_poll_records=BATCH_MAX,
            fetch_max_wait_ms=WITHIN_MS, max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _consume(self) -> None:
        while not self.should_stop:
            batch = await self.consumer.getmany(timeout_ms=WITHIN_MS * 5, max_records=BATCH_MAX)
            if batch:
                await self.forward(batch)

    async def forward(self, batch: dict[TopicPartition, list]) -> None:
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
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:  # revoked meanwhile: the new owner re-reads them
            log.warning("escalation.pack_commit_failed", reason=str(exc)[:200])
