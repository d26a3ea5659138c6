"""escalation-pack: the incidents topic, packed per source partition, in batches.

faust's per-event stream machinery alone held one escalation worker near 600 facts/s. This
stage is stateless, so it is a services.shared.stage.Stage run by a BatchStage (group
`<app id>-pack`): `getmany` batches, each source partition's facts packed (packing.py)
onto the same partition number of the internal packed topic, which the incident agent
reads, so one owner per incident partition still holds its state. All sends are awaited
together, and only then the batch's offsets committed: at least once; a fact packed twice
after a crash is recognised by the agent by its source offset. Records that are not even
text are dead-lettered here with their source topic, partition and offset.
"""

from __future__ import annotations

import asyncio

from services.escalation import metrics
from services.escalation.packing import pack
from services.shared.stage import Batch, Sink, dead_letter_all

BATCH_MAX = 5000
WITHIN_MS = 20
CONSUMER_OPTIONS = {"fetch_max_wait_ms": WITHIN_MS, "max_partition_fetch_bytes": 4 * 1024 * 1024}


class Packer:
    """Packs one batch of the incidents topic onto `packed_topic`."""

    def __init__(self, packed_topic: str) -> None:
        self.packed_topic = packed_topic

    async def handle(self, batch: Batch, sink: Sink) -> None:
        pending, dead = [], []
        for tp, records in batch.records.items():
            packs, unreadable = pack(records)
            dead += unreadable
            for value in packs:
                pending.append(await sink.send(self.packed_topic, str(tp.partition).encode(), value,
                                               partition=tp.partition))
        await dead_letter_all(sink, [(record, exc, "incidents") for record, exc in dead])
        await asyncio.gather(*pending)
        metrics.PACKED.inc(sum(len(records) for records in batch.records.values()))
