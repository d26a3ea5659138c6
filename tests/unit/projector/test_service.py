"""The projector's retry and isolate logic with a fake status store and a fake dead-letter
sender: no database, no broker."""

from __future__ import annotations

import asyncio
import time

from aiokafka.structs import ConsumerRecord, TopicPartition

from services.projector import metrics
from services.projector.service import Projector
from services.shared import codec
from services.shared import events as ev
from services.shared.settings import Settings
from tests.factories import fact, reported
from tests.fakes import FakeStatusStore, RecordingSender


class Consumer:
    """What the projector asks of its consumer while writing: assignment, pause and resume."""

    def __init__(self, *tps: TopicPartition) -> None:
        self.tps, self.paused_tps, self.pauses = set(tps), set(), 0

    def assignment(self) -> set:
        return self.tps

    def paused(self) -> set:
        return self.paused_tps

    def pause(self, *tps) -> None:
        self.paused_tps |= set(tps)
        self.pauses += 1

    def resume(self, *tps) -> None:
        self.paused_tps -= set(tps)

    def highwater(self, tp: TopicPartition) -> int:
        return 3


def projector(store: FakeStatusStore) -> Projector:
    p = Projector(Settings(projector_retry_max_seconds=0.01), store=store)
    p.producer = RecordingSender()  # the dead-letter sink sends through it
    p.consumer = Consumer(TopicPartition(p.catalog.name("incidents"), 0))
    return p


def records(p: Projector, *events) -> list[ConsumerRecord]:
    topic = p.catalog.name("incidents")
    out = []
    for offset, event in enumerate(events):
        enc = codec.encode(event)
        out.append(ConsumerRecord(topic=topic, partition=0, offset=offset, timestamp=0, timestamp_type=0,
                                  key=enc.key, value=enc.value, checksum=None, serialized_key_size=len(enc.key),
                                  serialized_value_size=len(enc.value), headers=enc.headers))
    return out


def _retries() -> float:
    return sum(s.value for m in metrics.DB_RETRIES.collect() for s in m.samples if s.name.endswith("_total"))


async def test_a_database_away_is_waited_out_and_the_batch_written_once_it_answers():
    store = FakeStatusStore()
    store.unavailable = 3
    p = projector(store)
    report = reported()
    rs = records(p, report, fact(ev.NoteAdded, report.incident_id, text="t"))
    before = _retries()
    await p.write(rs, await p.build(rs, dead_letter=True), time.perf_counter())
    assert (store.writes, store.resets, _retries() - before) == (4, 3, 3)
    assert len(store.facts) == 2 and store.facts[0].event_id == report.event_id
    assert p.consumer.pauses == 3 and p.consumer.paused() == set()  # paused while away, resumed after
    assert await store.stored_offsets(p.group, [p.catalog.name("incidents")]) == {(p.catalog.name("incidents"), 0): 2}
    assert p.producer.sent == []


async def test_a_refused_batch_is_written_record_by_record_and_only_the_refused_one_dead_lettered():
    store = FakeStatusStore()
    p = projector(store)
    good, bad, after = reported(), reported(), reported()
    store.refuse = {bad.event_id}
    rs = records(p, good, bad, after)
    await p.write(rs, await p.build(rs, dead_letter=True), time.perf_counter())
    assert {f.event_id for f in store.facts} == {good.event_id, after.event_id}
    (letter,) = [ev.DeadLetter.model_validate_json(s.value) for s in p.producer.sent]
    assert (letter.source_offset, letter.service) == (1, "projector")
    assert "refused" in letter.error
    # the refused record's offset is written alone, so the partition goes on past it
    assert await store.stored_offsets(p.group, [p.catalog.name("incidents")]) == {(p.catalog.name("incidents"), 0): 3}


class SlowSender(RecordingSender):
    """A sender whose acknowledgements come back only after `window` sends are in flight (or the
    batch's last one): one dead letter at a time never gets one."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window, self.in_flight, self.most_in_flight = window, 0, 0
        self.enough = asyncio.Event()

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers=None):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight >= self.window:
            self.enough.set()
        await asyncio.wait_for(self.enough.wait(), 5)
        self.in_flight -= 1
        return await super().send_and_wait(topic, value, key, headers)


async def test_a_batch_of_poison_records_is_dead_lettered_concurrently_and_all_before_the_build_returns():
    p = projector(FakeStatusStore())
    p.producer = SlowSender(window=50)
    rs = records(p, reported())
    topic = p.catalog.name("incidents")
    rs += [ConsumerRecord(topic=topic, partition=0, offset=n, timestamp=0, timestamp_type=0, key=b"k",
                          value=b"not json", checksum=None, serialized_key_size=1, serialized_value_size=8,
                          headers=()) for n in range(1, 121)]
    batch = await p.build(rs, dead_letter=True)
    assert len(p.producer.sent) == 120 and p.producer.in_flight == 0
    assert p.producer.most_in_flight >= 50
    assert batch.offsets == {(topic, 0): 121} and len(batch.timeline) == 1


def test_what_the_consumer_holds_fetched_is_bounded_and_still_fills_a_batch():
    """aiokafka keeps a fetch response's record batches until getmany() has taken all of them: at
    most fetch_max_bytes (default 50 MiB), at most max_partition_fetch_bytes of each partition."""
    p = projector(FakeStatusStore())
    options = p.consumer_options()
    partitions = sum(t.partitions for t in p.catalog if p.catalog.name_of(t) in p.topics)
    held = min(options.get("fetch_max_bytes", 52_428_800), partitions * options["max_partition_fetch_bytes"])
    assert held <= 8 * 1024 * 1024
    one_batch = p.settings.projector_batch_max_records * 600  # a timeline fact is 300-600 bytes on the wire
    incidents = p.catalog.spec_of("incidents").partitions
    assert incidents * options["max_partition_fetch_bytes"] >= one_batch  # a backlog on incidents alone fills a batch
