"""faust never commits past a record its agents did not process (services/shared/faust_commits.py)."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from services.shared import faust_commits
from services.shared.processor import make_app
from services.shared.settings import Settings

pytestmark = pytest.mark.unit
PACKED = TP("muster-escalation-packed", 4)


def consumer(committed: int | None, acked: list[int], gaps: tuple[tuple[int, int], ...] = ()) -> SimpleNamespace:
    """The bookkeeping `_new_offset` reads: committed offsets, acknowledged offsets, read gaps."""
    gap = defaultdict(IntervalTree)
    for begin, end in gaps:
        gap[PACKED].addi(begin, end)
    return SimpleNamespace(_acked=defaultdict(list, {PACKED: list(acked)}), _committed_offset=defaultdict(
        lambda: None, {PACKED: committed}), _gap=gap, _acked_index=defaultdict(set, {PACKED: set(acked)}))


def test_faust_itself_commits_over_a_skipped_record_at_the_committed_offset():
    """What lost the chaos run's pack: offset 883 committed, fetched during recovery and skipped,
    884 and 885 processed."""
    assert faust_commits.upstream()(consumer(883, [884, 885]), PACKED) == 886


def test_a_record_at_the_committed_offset_that_was_skipped_holds_the_commit():
    assert faust_commits.new_offset(consumer(883, [884, 885]), PACKED) is None
    assert faust_commits.new_offset(consumer(883, [885, 886]), PACKED) is None


def test_a_run_from_the_committed_offset_commits_its_end():
    c = consumer(883, [883, 884, 885, 887])
    assert faust_commits.new_offset(c, PACKED) == 886
    assert c._acked[PACKED] == [887]  # kept for the next commit, as faust keeps it


def test_a_gap_in_what_the_consumer_read_is_never_committed_over():
    """The second lost pack (2026-12-03): committed 526, the pack there dropped, the read went on
    from 528, faust recorded the gap 527 and committed 526 and 527 over with it. Our topics'
    offsets are contiguous: a jump is a dropped record, and the commit waits."""
    assert faust_commits.upstream()(consumer(526, [528, 529], gaps=((527, 528),)), PACKED) == 530
    c = consumer(526, [528, 529], gaps=((527, 528),))
    assert faust_commits.new_offset(c, PACKED) is None
    assert not c._gap[PACKED]  # faust's gap record is dropped, not left to grow
    middle = consumer(100, [100, 101, 103], gaps=((102, 103),))
    assert faust_commits.new_offset(middle, PACKED) == 102  # up to the hole, not over it


def test_the_first_commit_of_a_partition_takes_what_was_acknowledged():
    assert faust_commits.new_offset(consumer(None, [5, 6]), PACKED) == 7


def test_every_processor_app_uses_it():
    make_app(Settings(), "escalation", partitions=6, replication=1,
             lag=SimpleNamespace(labels=lambda **_: None))
    assert Consumer._new_offset is faust_commits.new_offset


def test_a_held_head_is_remembered_from_when_it_was_first_held_and_forgotten_once_committed():
    c = consumer(883, [884, 885])
    faust_commits.new_offset(c, PACKED)
    first = faust_commits.held(c)[PACKED]
    assert first[0] == 883
    faust_commits.new_offset(c, PACKED)
    assert faust_commits.held(c)[PACKED] == first  # still held: its clock did not start again
    c._acked[PACKED].append(883)
    c._acked_index[PACKED].add(883)
    assert faust_commits.new_offset(c, PACKED) == 886
    assert PACKED not in faust_commits.held(c)


def test_a_head_held_long_enough_is_due_to_be_read_again():
    heads = {PACKED: (883, 100.0), TP("muster-escalation-packed", 1): (10, 104.0)}
    assert faust_commits.due(heads, 105.0, 5.0) == [(PACKED, 883)]
    assert faust_commits.due(heads, 104.9, 5.0) == []


class SeekingConsumer(SimpleNamespace):
    def __init__(self, committed: int, acked: list[int], assigned: bool = True, log_start: int = 0) -> None:
        super().__init__(**vars(consumer(committed, acked)))
        self.assigned = {PACKED} if assigned else set()
        self.log_start = log_start
        self.seeks: list[tuple[TP, int]] = []

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.log_start for tp in tps}

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def reread(c: SeekingConsumer, now: float) -> list:
    import asyncio
    service = faust_commits.Reread(SimpleNamespace(consumer=c), "muster-escalation", lambda: True)
    return asyncio.run(service.reread(c, now))


def test_a_skipped_record_is_read_again_from_the_committed_offset_without_a_restart():
    c = SeekingConsumer(883, [884, 885])
    assert faust_commits.new_offset(c, PACKED) is None
    held_at = faust_commits.held(c)[PACKED][1]
    assert reread(c, held_at + 1.0) == [] and c.seeks == []  # not yet: it may only be slow
    assert reread(c, held_at + faust_commits.REREAD_AFTER_S) == [(PACKED, 883)]
    assert c.seeks == [(PACKED, 883)]
    assert PACKED not in faust_commits.held(c)


def test_no_seek_once_the_head_was_acknowledged_the_commit_moved_or_the_partition_left():
    for change in ("acked", "committed", "revoked"):
        c = SeekingConsumer(883, [884, 885])
        faust_commits.new_offset(c, PACKED)
        held_at = faust_commits.held(c)[PACKED][1]
        if change == "acked":
            c._acked_index[PACKED].add(883)
        elif change == "committed":
            c._committed_offset[PACKED] = 886
        else:
            c.assigned = set()
        assert reread(c, held_at + 60.0) == [], change
        assert c.seeks == [], change


def test_a_held_head_that_expired_unread_moves_the_committed_offset_to_the_log_start():
    """Retention took records never read (the worker lagged past it): the consumer resets to the
    log start and the first record left is where the run begins, so the commit can move again."""
    c = SeekingConsumer(883, [900, 901], log_start=900)
    assert faust_commits.new_offset(c, PACKED) is None
    held_at = faust_commits.held(c)[PACKED][1]
    assert reread(c, held_at + faust_commits.REREAD_AFTER_S) == [] and c.seeks == []
    assert faust_commits.new_offset(c, PACKED) == 902


def test_every_processor_app_reads_skipped_records_again():
    app = make_app(Settings(), "escalation", partitions=6, replication=1,
                   lag=SimpleNamespace(labels=lambda **_: None))
    assert any(isinstance(s, faust_commits.Reread) for s in app._extra_services)


def test_an_agents_stream_prefetches_a_bounded_number_of_records():
    """The agents read packs of many facts: after a rejoin (every partition sought back to its
    committed offset) faust's 4,096 buffered records a stream were the escalation worker's 30 MB
    step at each cut of its broker link (the soaks of 2026-12-03)."""
    import asyncio

    from services.shared.processor import STREAM_BUFFER_MAXSIZE

    app = make_app(Settings(), "escalation", partitions=6, replication=1, lag=SimpleNamespace(labels=lambda **_: None))

    async def buffered() -> int:
        return app.topic("muster-escalation-packed").queue.maxsize
    assert asyncio.run(buffered()) == STREAM_BUFFER_MAXSIZE == 256


def test_processor_producers_send_record_batches_of_256_kib_not_16():
    """aiokafka holds one open batch per partition and a send to a full one waits for the sender
    (one request in flight per broker): the batch size is a partition's throughput per round trip.
    With faust's 16 KiB a poison storm's dead letters held tension's re-keying stage past the
    progress watchdog's limit (the soak of 2026-12-03)."""
    from services.shared.kafka import RECORD_BATCH_BYTES, make_producer
    app = make_app(Settings(), "tension", partitions=6, replication=1, lag=SimpleNamespace(labels=lambda **_: None))
    assert app.conf.producer_max_batch_size == RECORD_BATCH_BYTES == 256 * 1024

    async def built() -> int:
        return make_producer(Settings())._message_accumulator._batch_size
    import asyncio
    assert asyncio.run(built()) == RECORD_BATCH_BYTES
