"""Helpers for the tension wiring tests: a fresh set of topics per test, producing a
history, reading a topic from the beginning, and the alerts the pure rules expect."""

from __future__ import annotations

import asyncio

from services.shared.codec import decode, encode
from services.shared.kafka import apply_topics, make_admin, make_producer, read_events
from services.shared.settings import REPO_ROOT, Settings
from services.shared.topics import TopicCatalog
from services.shared.kafka_security import apply_acls
from services.shared.wards import wards
from services.tension.config import load_config
from services.tension.rules import replay, to_event
from tests.tension_history import by_ward_partition


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
    return await read_events(settings, [topic], parse)  # older-version copies skipped


BY_WARD_PARTITIONS = TopicCatalog.load(REPO_ROOT / "topics.yaml").spec_of("tension.by_ward").partitions


def expected_alerts(events, source_partitions: int = 6, mode: str = "live") -> list:
    """What the worker must publish for one mode: the pure rules, fed as each by-ward partition
    sees them (calendar facts on the calendar topic's partition, numbered after the incidents
    topic's), every source partition then read to its end."""
    config = load_config()
    names = {code: w.name for code, w in wards().items()}
    catalog = TopicCatalog.load(REPO_ROOT / "topics.yaml")
    per_partition = by_ward_partition(events, source_partitions=source_partitions,
                                      calendar_partitions=catalog.spec_of("tension.calendar").partitions,
                                      config=config, mode=mode)
    changes = replay(per_partition, config, BY_WARD_PARTITIONS, mode=mode)
    return [to_event(change, names[change.ward], mode) for change in changes]


async def caught_up(settings: Settings, group: str, topics: list[str]) -> bool:
    """The group has committed every record now on the topics."""
    from services.shared.kafka import make_consumer, topic_partitions

    admin, consumer = make_admin(settings), make_consumer(settings, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await topic_partitions(settings, topics)
        ends = await consumer.end_offsets(partitions)
        return bool(partitions) and all(
            end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


async def everything_evaluated(settings: Settings, tension) -> None:
    """Wait until a worker running in this process has read the whole log and evaluated
    everything it allows: the re-keying stage committed the incidents and calendar topics,
    then the scorer the by-ward topic, then every by-ward partition has every source idle and
    its last point evaluated at its newest clock, if it has one (what the pure replay assumes at its end)."""
    from tests.support import wait_until

    catalog = TopicCatalog.from_settings(settings)
    group = tension.app.conf.id
    await wait_until(lambda: caught_up(settings, tension.rekey_group,
                                       [catalog.name("incidents"), catalog.name("tension.calendar")]),
                     timeout=120, interval=0.5, what="the re-keying stage to commit the log")
    await wait_until(lambda: caught_up(settings, group, [tension.by_ward.get_topic_name()]), timeout=120,
                     interval=0.5, what="the scorer to commit the by-ward topic")

    async def evaluated() -> bool:
        for partition in range(tension.partitions):
            clock = tension.tables.clock(partition)
            if clock.sources == 0 or not all(clock.idle.get(s) for s in range(clock.sources)):
                return False
            if clock.clocks and (clock.done is None or clock.done < max(clock.clocks.values())):
                return False  # (a partition owning no ward of the history has no clock at all)
        return True

    await wait_until(evaluated, timeout=60, what="every by-ward partition to evaluate to its newest clock")
