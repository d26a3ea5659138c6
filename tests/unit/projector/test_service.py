"""The projector's retry and isolate logic with a fake status store and a fake dead-letter
sender: no database, no broker."""

from __future__ import annotations

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
