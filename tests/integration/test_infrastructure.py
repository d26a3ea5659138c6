"""The foundation works against the real broker and database."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import TopicPartition

from services.shared.kafka import apply_topics, make_admin, make_consumer, make_producer, topic_drift
from services.shared.topics import TopicCatalog, load_topics_file
from tests.support import wait_until

pytestmark = [pytest.mark.kafka]


async def test_aiokafka_round_trip_with_acks_all_and_idempotent_producer(test_settings, topics):
    topic = topics.name("incidents")
    key = uuid.uuid4().hex.encode()
    producer = make_producer(test_settings)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, b'{"hello": "muster"}', key=key, headers=[("event_type", b"Smoke")])
        # Idempotence reached the broker: it assigned this producer an id and epoch.
        assert producer._txn_manager is not None and producer._txn_manager.producer_id >= 0
    finally:
        await producer.stop()
    consumer = make_consumer(test_settings, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, metadata.partition)
        consumer.assign([tp])
        consumer.seek(tp, metadata.offset)
        record = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (key, b'{"hello": "muster"}')
    assert dict(record.headers)["event_type"] == b"Smoke"


async def test_topics_apply_twice_changes_nothing_the_second_time(test_settings, topics):
    admin = make_admin(test_settings)
    await admin.start()
    try:
        assert await apply_topics(admin, topics) == []
        assert (await topic_drift(admin, topics)).empty()
    finally:
        await admin.close()


async def test_every_topic_exists_with_its_declared_partitions(test_settings, topics):
    admin = make_admin(test_settings)
    await admin.start()
    try:
        described = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(topics.names())}
    finally:
        await admin.close()
    assert described == {topics.name_of(t): t.partitions for t in topics}


async def test_a_partition_increase_in_topics_yaml_is_applied(test_settings, tmp_path):
    spec = load_topics_file(test_settings.topics_file)
    prefix = f"grow-{uuid.uuid4().hex[:6]}."
    catalog = TopicCatalog(spec, "local", prefix)
    grown = spec.model_copy(
        update={"topics": tuple(t.model_copy(update={"partitions": t.partitions + 2}) for t in spec.topics[:1])}
    )
    small = spec.model_copy(update={"topics": spec.topics[:1]})
    admin = make_admin(test_settings)
    await admin.start()
    try:
        await apply_topics(admin, TopicCatalog(small, "local", prefix))
        drift = await topic_drift(admin, TopicCatalog(grown, "local", prefix))
        name = catalog.name(spec.topics[0].id)
        assert drift.partitions == {name: (spec.topics[0].partitions, spec.topics[0].partitions + 2)}
        changes = await apply_topics(admin, TopicCatalog(grown, "local", prefix))
        assert changes == [f"partitions {name}: {spec.topics[0].partitions} -> {spec.topics[0].partitions + 2}"]
        described = await admin.describe_topics([name])
        assert len(described[0]["partitions"]) == spec.topics[0].partitions + 2
    finally:
        await admin.delete_topics([catalog.name(spec.topics[0].id)])
        await admin.close()


async def test_a_config_drift_is_reported_and_repaired(test_settings, topics):
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    name = topics.name("deadletter")
    admin = make_admin(test_settings)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs={**topics.configs(topics.spec_of("deadletter")), "retention.ms": "1000"})]
        )
        # The broker applies config changes asynchronously: await the drift rather than expect it at once.
        async def drifted():
            return (await topic_drift(admin, topics)).configs.get(name)

        assert await wait_until(drifted, timeout=20, what="the drift to show") == {"retention.ms": ("1000", "2592000000")}
        await apply_topics(admin, topics)

        async def repaired():
            return (await topic_drift(admin, topics)).empty()

        assert await wait_until(repaired, timeout=20, what="the drift to be repaired")
    finally:
        await admin.close()


@pytest.mark.postgres
async def test_asyncpg_round_trip(database):
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("create table smoke (id int primary key, note text)")
        await conn.execute("insert into smoke values ($1, $2)", 1, "round trip")
        assert await conn.fetchrow("select id, note from smoke") == (1, "round trip")
        assert (await conn.fetchval("show server_version_num")).isdigit()
    finally:
        await conn.close()
