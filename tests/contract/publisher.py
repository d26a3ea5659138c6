"""The contract of intake's publisher (services.intake.ports.PublisherPort): one base class of
tests, run against the fake (tests/unit/intake/test_publisher_contract.py) and, marked kafka,
against the real publisher on the broker (tests/integration/intake/test_publisher.py). A
subclass says how to make a publisher (connected, or never connected) and what reached
the topic."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson

from services.intake.publisher import BrokerUnavailable
from services.shared import codec
from services.shared import events as ev
from services.shared.kafka import partition_for
from services.shared.settings import REPO_ROOT
from services.shared.topics import TopicCatalog
from tests.factories import fact, reported

PARTITIONS = list(range(TopicCatalog.load(REPO_ROOT / "topics.yaml").spec_of("incidents").partitions))


def partition_of(event) -> int:
    """The partition the event's key gives, as the producer partitions."""
    return partition_for(codec.encode(event).key, PARTITIONS)


class PublisherContract:
    async def make_publisher(self):
        raise NotImplementedError

    async def make_unconnected(self):
        """A publisher whose broker never answered."""
        raise NotImplementedError

    async def on_topic(self, publisher) -> dict[tuple[int, int], tuple[dict, list]]:
        """What reached the topic: (partition, offset) -> (the record's JSON, its headers)."""
        raise NotImplementedError

    async def test_an_acknowledged_event_is_on_the_topic_where_it_was_acknowledged(self):
        publisher, event = await self.make_publisher(), reported()
        assert publisher.connected
        [metadata] = await publisher.publish([event])
        assert (metadata.topic, metadata.partition) == (publisher.topic, partition_of(event))
        value, _ = (await self.on_topic(publisher))[(metadata.partition, metadata.offset)]
        assert value["event_id"] == str(event.event_id)

    async def test_a_batch_gives_each_event_its_own_record_on_its_key_s_partition(self):
        publisher = await self.make_publisher()
        events = [reported() for _ in range(6)]
        outcomes = await publisher.publish_batch(events)
        assert [o.partition for o in outcomes] == [partition_of(e) for e in events]
        assert len({(o.partition, o.offset) for o in outcomes}) == len(events)
        found = await self.on_topic(publisher)
        assert [found[(o.partition, o.offset)][0]["event_id"] for o in outcomes] == [str(e.event_id) for e in events]

    async def test_the_facts_of_one_incident_stay_in_order_on_one_partition_sent_singly_or_batched(self):
        publisher, report = await self.make_publisher(), reported()
        notes = [fact(ev.NoteAdded, report.incident_id, text=f"note {n}") for n in range(3)]
        [first] = await publisher.publish([report])
        rest = await publisher.publish_batch(notes)
        assert {o.partition for o in [first, *rest]} == {partition_of(report)}
        assert [o.offset for o in [first, *rest]] == sorted({o.offset for o in [first, *rest]})

    async def test_an_event_still_produced_in_an_older_version_is_acknowledged_at_its_own_record(self):
        publisher, report = await self.make_publisher(), reported()
        dispatched = fact(ev.ResponderDispatched, report.incident_id, agency="fire", callsign="F21")
        assert len(codec.editions(dispatched)) == 2  # ResponderDispatched v1 is still produced beside v2
        [metadata] = await publisher.publish([dispatched])
        found = await self.on_topic(publisher)
        value, headers = found[(metadata.partition, metadata.offset)]
        assert (value["event_id"], value["schema_version"]) == (str(dispatched.event_id), dispatched.schema_version)
        assert not codec.superseded(headers)
        older = [v for (p, _), (v, h) in found.items()
                 if p == metadata.partition and v["event_id"] == str(dispatched.event_id) and codec.superseded(h)]
        assert [v["schema_version"] for v in older] == [1]

    async def test_find_gives_where_an_event_landed_and_none_for_one_never_sent(self):
        publisher, report = await self.make_publisher(), reported()
        since = datetime.now(timezone.utc)
        dispatched = fact(ev.ResponderDispatched, report.incident_id, agency="fire", callsign="F21")
        [landed, landed_too] = await publisher.publish([report, dispatched])
        found = await publisher.find(report, since)
        assert (found.topic, found.partition, found.offset) == (landed.topic, landed.partition, landed.offset)
        found = await publisher.find(dispatched, since)  # its own record, not the older version's copy
        assert (found.partition, found.offset) == (landed_too.partition, landed_too.offset)
        assert await publisher.find(fact(ev.NoteAdded, report.incident_id, text="never sent"), since) is None

    async def test_find_many_gives_each_event_where_it_landed_in_one_call(self):
        publisher = await self.make_publisher()
        since = datetime.now(timezone.utc)
        sent = [reported() for _ in range(8)]
        landed = await publisher.publish(sent)
        never = fact(ev.NoteAdded, sent[0].incident_id, text="never sent")
        found = await publisher.find_many([(e, since) for e in [never, *sent]])
        assert found[0] is None
        assert [(f.partition, f.offset) for f in found[1:]] == [(m.partition, m.offset) for m in landed]
        later = await publisher.find_many([(sent[0], since), (sent[1], datetime.now(timezone.utc) + timedelta(minutes=5))])
        assert later[0] is not None and later[1] is None  # each event's own time, on one partition or many

    async def test_find_looks_only_at_records_written_since_the_time_it_is_given(self):
        publisher, report = await self.make_publisher(), reported()
        await publisher.publish([report])
        assert await publisher.find(report, datetime.now(timezone.utc) + timedelta(minutes=5)) is None

    async def test_a_publisher_whose_broker_never_answered_says_so_and_publishes_nothing(self):
        publisher, event = await self.make_unconnected(), reported()
        assert not publisher.connected
        [outcome] = await publisher.publish([event])
        assert isinstance(outcome, BrokerUnavailable)
        try:
            await publisher.publish_batch([event])
        except BrokerUnavailable:
            pass
        else:
            raise AssertionError("publish_batch without a broker must raise BrokerUnavailable")


def as_found(records) -> dict[tuple[int, int], tuple[dict, list]]:
    """(partition, offset, value bytes, headers) records -> on_topic's answer."""
    return {(p, o): (orjson.loads(v), list(h or ())) for p, o, v, h in records}
