"""Read every TensionLevelChanged on an alerts topic (for the weekly return)."""

from __future__ import annotations


from services.shared.codec import PoisonRecord, decode, superseded
from services.shared.events import TensionLevelChanged
from services.shared.kafka import make_consumer, topic_partitions
from services.shared.settings import Settings


async def read_alerts(settings: Settings, topic: str) -> list[TensionLevelChanged]:
    partitions = await topic_partitions(settings, [topic])
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        alerts: dict[str, TensionLevelChanged] = {}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if superseded(record.headers):
                        continue
                    try:
                        event = decode(record.value)
                    except PoisonRecord:
                        continue
                    if isinstance(event, TensionLevelChanged):
                        alerts[str(event.event_id)] = event  # a replayed alert has the same id
        return list(alerts.values())
    finally:
        await consumer.stop()
