"""What the processor benchmarks share: a topic's partitions, "has this group committed
everything", and the raw aiokafka consume rate of a topic (the ceiling printed beside them)."""

from __future__ import annotations

import time

from aiokafka import TopicPartition

from services.shared.kafka import make_admin, make_consumer
from services.shared.settings import Settings


async def partitions_of(admin, topic: str) -> list[TopicPartition]:
    described = await admin.describe_topics([topic])
    return [TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]]


async def committed_all(admin, settings: Settings, group: str, topics: list[str]) -> bool:
    tps = [tp for t in topics for tp in await partitions_of(admin, t)]
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    committed = await admin.list_consumer_group_offsets(group)
    return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())


async def raw_consume_rate(settings: Settings, topic: str, total: int) -> float:
    consumer = make_consumer(settings, group_id=None, max_poll_records=5000)
    await consumer.start()
    try:
        admin = make_admin(settings)
        await admin.start()
        tps = await partitions_of(admin, topic)
        await admin.close()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, started = 0, time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()
