"""The faust group's committed start on every internal partition it reads (offsets.py), on the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition

from services.escalation.app import build
from services.escalation.offsets import MARKER_KEY, ensure_starts
from services.shared.kafka import make_admin, make_consumer

pytestmark = [pytest.mark.kafka]


@pytest.fixture
async def escalation(test_settings, topics):
    settings = test_settings.model_copy(update={"topic_prefix": f"{test_settings.topic_prefix}starts-{uuid.uuid4().hex[:6]}."})
    e = build(settings)
    yield e
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)])
    finally:
        await admin.close()


async def _committed_and_first(settings, group: str, tps: list[TopicPartition]):
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        consumer.assign(tps)
        committed = {tp: await consumer.committed(tp) for tp in tps}
        await consumer.seek_to_beginning(*tps)
        first = {}
        while len(first) < len(tps):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                first.setdefault(tp, records[0])
        return committed, first
    finally:
        await consumer.stop()


async def test_every_internal_partition_starts_with_a_marker_and_a_committed_offset_past_it(escalation):
    await escalation.prepare()
    tps = [TopicPartition(t, p) for t in escalation.internal_topics() for p in range(escalation.partitions)]
    committed, first = await _committed_and_first(escalation.settings, escalation.app.conf.id, tps)
    assert all(first[tp].offset == 0 and first[tp].key == MARKER_KEY for tp in tps)
    assert set(committed.values()) == {1}


async def test_a_second_start_commits_nothing_over_the_group_s_own_offsets(escalation):
    await escalation.prepare()
    again = await ensure_starts(escalation.settings, escalation.app.conf.id, escalation.internal_topics(),
                                escalation.partitions)
    assert again == {}
