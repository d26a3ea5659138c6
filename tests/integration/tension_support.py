"""Helpers for the tension wiring tests: a fresh set of topics per test, producing a
history, reading a topic from the beginning, and the alerts the pure rules expect."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka.partitioner import DefaultPartitioner

from services.shared.codec import decode, encode
from services.shared.kafka import read_events, apply_topics, make_admin, make_producer
from services.shared.settings import REPO_ROOT, Settings
from services.shared.topics import TopicCatalog
from services.shared.kafka_security import apply_acls
from services.shared.wards import wards
from services.tension.config import load_config
from services.tension.rules import indicator, process, to_event, ward_partition
from services.tension.state import ClockState


async def fresh_topics(settings: Settings, unique: str) -> Settings:
    """Settings with their own topic prefix (under the run's), every topic created."""
    mine = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}{unique}."})
    admin = make_admin(mine)
    await admin.start()
    try:
        await apply_topics(admin, TopicCatalog.from_settings(mine))
    finally:
        await admin.close()
    # a tension process runs as its own principal: its grants, removed with the run's (tests/conftest.py)
    await asyncio.to_thread(apply_acls, mine, TopicCatalog.from_settings(mine))
    return mine


async def produce(settings: Settings, topic: str, events=(), raw: list[tuple[bytes, bytes]] = ()) -> None:
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    try:
        for key, value in raw:
            await producer.send(topic, value, key=key)
        for event in events:
            encoded = encode(event)
            await producer.send(topic, encoded.value, key=encoded.key, headers=encoded.headers)
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(settings: Settings, topic: str, parse=decode) -> list:
    """Every record on a topic right now, decoded, in partition order."""
    return await read_events(settings, [topic], parse)


BY_WARD_PARTITIONS = TopicCatalog.load(REPO_ROOT / "topics.yaml").spec_of("tension.by_ward").partitions


def expected_alerts(events, source_partitions: int = 6, mode: str = "live") -> list:
    """What the worker must publish for one mode: the pure rules, fed as each by-ward partition sees them."""
    config = load_config()
    partitioner = DefaultPartitioner()
    names = {code: w.name for code, w in wards().items()}
    per_partition = defaultdict(list)
    for event in events:
        src = partitioner(str(event.incident_id).encode(), list(range(source_partitions)), list(range(source_partitions)))
        ind = indicator(event, src, source_partitions)
        if ind is not None and ind.mode == mode:
            per_partition[ward_partition(ind.ward, BY_WARD_PARTITIONS)].append(ind)
    alerts = []
    for inds in per_partition.values():
        result = process(ClockState(), {}, inds, config)
        alerts += [to_event(change, names[change.ward], mode) for change in result.changes]
    return alerts
