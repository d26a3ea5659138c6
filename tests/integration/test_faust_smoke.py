"""A faust agent consumes one topic and produces to another, on the real broker."""

from __future__ import annotations

import asyncio
import uuid

import faust
import pytest
from aiokafka import TopicPartition

from services.shared.kafka import make_admin, make_consumer, make_producer
from services.shared.processor import credentials
from aiokafka.admin import NewTopic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_a_faust_agent_consumes_one_topic_and_produces_to_another(test_settings, tmp_path):
    run = uuid.uuid4().hex[:8]
    source_name, sink_name = f"{test_settings.topic_prefix}faust-in-{run}", f"{test_settings.topic_prefix}faust-out-{run}"
    admin = make_admin(test_settings)
    await admin.start()
    await admin.create_topics([NewTopic(source_name, 1, 1), NewTopic(sink_name, 1, 1)])

    app = faust.App(
        f"{test_settings.topic_prefix}smoke-{run}",  # internal topics fall under the run prefix
        broker=f"kafka://{test_settings.kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        datadir=str(tmp_path / "faust"),
        topic_replication_factor=1,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
        broker_credentials=credentials(test_settings),  # the session's (the admin's on the secured broker)
    )
    source = app.topic(source_name, value_serializer="raw", key_serializer="raw")
    sink = app.topic(sink_name, value_serializer="raw", key_serializer="raw")

    @app.agent(source)
    async def shout(stream):
        async for event in stream.events():
            await sink.send(key=event.key, value=event.value.upper())

    producer = make_producer(test_settings)
    consumer = make_consumer(test_settings, group_id=None)
    await producer.start()
    await consumer.start()
    await app.start()
    try:
        await producer.send_and_wait(source_name, b"major incident", key=b"k1")
        consumer.assign([TopicPartition(sink_name, 0)])
        await consumer.seek_to_beginning(TopicPartition(sink_name, 0))
        record = await asyncio.wait_for(consumer.getone(), 60)
        assert (record.key, record.value) == (b"k1", b"MAJOR INCIDENT")
    finally:
        await app.stop()
        await producer.stop()
        await consumer.stop()
        await admin.delete_topics([source_name, sink_name])
        await admin.close()
