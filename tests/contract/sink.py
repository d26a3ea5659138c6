"""The contract of the stream processors' sender (services.shared.stage.Sink: escalation's
outputs to the agency topics, its control and corroboration records, its changelog, its dead
letters): one base class of tests, run against the fake (tests/unit/shared/test_sink_contract.py)
and, marked kafka, against the processor runtime's FaustSink on the real broker
(tests/integration/escalation/test_adapters.py). A subclass says how to make a sink, which
topics it may send to, and what reached a topic."""

from __future__ import annotations

import asyncio
import uuid

from services.escalation.agents import Row  # a fact of a pack, as the dead-letter topic needs it


class SinkContract:
    async def make_sink(self):
        raise NotImplementedError

    def topic(self, topic_id: str) -> str:
        """The full name of a topic of topics.yaml."""
        raise NotImplementedError

    async def arrived(self, sink, topic: str) -> list:
        """What reached the topic: records with topic, partition, key, value and headers."""
        raise NotImplementedError

    async def dead_lettered(self, sink) -> list[tuple[str, int, int, str]]:
        """The dead letters sent: (source topic, partition, offset, error class)."""
        raise NotImplementedError

    async def test_an_acknowledged_record_is_on_its_topic_with_its_key_value_and_headers(self):
        sink, topic, key = await self.make_sink(), self.topic("escalations.fire"), uuid.uuid4().bytes
        await (await sink.send(topic, key, b'{"level": 3}', headers=[("event_type", b"EscalationRaised")]))
        (record,) = [r for r in await self.arrived(sink, topic) if r.key == key]
        assert (record.topic, record.value) == (topic, b'{"level": 3}')
        assert ("event_type", b"EscalationRaised") in list(record.headers)

    async def test_a_record_sent_to_a_partition_arrives_there(self):
        sink, topic, key = await self.make_sink(), self.topic("escalation.control"), uuid.uuid4().bytes
        await (await sink.send(topic, key, b"{}", partition=3))
        assert [r.partition for r in await self.arrived(sink, topic) if r.key == key] == [3]

    async def test_the_records_of_one_key_arrive_in_the_order_they_were_sent_on_one_partition(self):
        sink, topic, key = await self.make_sink(), self.topic("escalations.fire"), uuid.uuid4().bytes
        acks = [await sink.send(topic, key, b'{"n": %d}' % n) for n in range(5)]
        await asyncio.gather(*acks)
        mine = [r for r in await self.arrived(sink, topic) if r.key == key]
        assert [r.value for r in mine] == [b'{"n": %d}' % n for n in range(5)]
        assert len({r.partition for r in mine}) == 1

    async def test_a_tombstone_arrives_as_a_record_without_a_value(self):
        sink, topic, key = await self.make_sink(), self.topic("escalation.incident_state"), uuid.uuid4().bytes
        await (await sink.send(topic, key, b'{"state": 1}', partition=0))
        await (await sink.send(topic, key, None, partition=0))
        assert [r.value for r in await self.arrived(sink, topic) if r.key == key] == [b'{"state": 1}', None]

    async def test_a_dead_letter_names_where_the_record_came_from(self):
        sink, source = await self.make_sink(), self.topic("incidents")
        offset = uuid.uuid4().int % 1_000_000
        await sink.dead_letter(Row(source, 2, offset, b"k", b"not json"), ValueError("not json"), "incidents")
        assert (source, 2, offset, "ValueError") in await self.dead_lettered(sink)
