"""Regression (issue 17, found by `muster chaos`): while the broker was down for ~50 s, every
retry of a write that had answered 503 handed another copy to the producer, and all of them
reached the topic when the broker came back. A record still at the producer now stands for
its event_id: a retry waits for it and gets its partition and offset, never a second copy."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka.structs import RecordMetadata, TopicPartition

from services.intake.publisher import BrokerUnavailable, Publisher
from services.shared.settings import Settings
from tests.factories import reported

pytestmark = pytest.mark.unit
TOPIC = "incidents.events.v1"


@dataclass
class _Appended:
    offset: int


class _Builder:
    def __init__(self) -> None:
        self.records = 0

    def append(self, **_record) -> _Appended:
        self.records += 1
        return _Appended(self.records - 1)


class SlowBroker:
    """The producer's surface the publisher uses; nothing is acknowledged until `ack_all`."""

    def __init__(self) -> None:
        self.sends: list[tuple[int, asyncio.Future]] = []  # (records, future)

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> _Builder:
        return _Builder()

    async def send(self, topic, value, key=None, headers=None) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.sends.append((1, future))
        return future

    async def send_batch(self, builder: _Builder, topic: str, partition: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.sends.append((builder.records, future))
        return future

    @property
    def records(self) -> int:
        return sum(n for n, _ in self.sends)

    def ack_all(self) -> None:
        for n, (_, future) in enumerate(self.sends):
            if not future.done():
                future.set_result(RecordMetadata(TOPIC, 0, TopicPartition(TOPIC, 0), 100 * n, -1, -1, -1))


def _publisher() -> tuple[Publisher, SlowBroker]:
    publisher = Publisher(Settings(intake_publish_timeout_s=0.05), TOPIC)
    broker = SlowBroker()
    publisher._producer = broker  # the producer it would have connected
    return publisher, broker


async def test_a_retried_single_event_waits_for_its_first_copy_and_gets_its_offset():
    publisher, broker = _publisher()
    event = reported()
    [first] = await publisher.publish([event])
    [again] = await publisher.publish([event])
    assert isinstance(first, BrokerUnavailable) and isinstance(again, BrokerUnavailable)
    assert broker.records == 1  # the retry handed nothing more to the producer
    broker.ack_all()
    [late] = await publisher.publish([event])
    assert isinstance(late, RecordMetadata) and late.offset == 0 and broker.records == 1


async def test_a_retried_batch_sends_only_what_is_not_already_at_the_producer():
    publisher, broker = _publisher()
    events = [reported() for _ in range(5)]
    first = await publisher.publish_batch(events[:3])
    assert all(isinstance(o, BrokerUnavailable) for o in first)
    held = broker.records
    again = await publisher.publish_batch(events)  # the same three and two new ones
    assert all(isinstance(o, BrokerUnavailable) for o in again)
    assert broker.records == held + 2
    broker.ack_all()
    last = await publisher.publish_batch(events)
    assert all(isinstance(o, RecordMetadata) for o in last) and broker.records == held + 2
    assert len({(o.partition, o.offset) for o in last}) == 5  # each its own record


async def test_a_copy_that_failed_is_published_again():
    publisher, broker = _publisher()
    event = reported()
    await publisher.publish([event])
    broker.sends[0][1].set_exception(RuntimeError("broker gone"))
    await asyncio.sleep(0.01)
    await publisher.publish([event])
    assert broker.records == 2
