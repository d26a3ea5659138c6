"""The progress watchdog's pure core: which partitions are stalled, from the offsets the broker
reports at each observation (services/shared/watchdog.py)."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from services.shared.watchdog import UNSETTLED_FACTOR, Offsets, Progress

pytestmark = pytest.mark.unit

A, B = TopicPartition("incidents", 0), TopicPartition("incidents", 1)
LIMIT = 30.0


def test_lag_counts_from_the_committed_offset_or_the_log_s_first_record():
    assert Offsets(committed=5, first=0, end=9).lag == 4
    assert Offsets(committed=None, first=3, end=9).lag == 6  # never committed: everything kept is waiting
    assert Offsets(committed=None, first=9, end=9).lag == 0  # never committed, everything expired: nothing waits
    assert Offsets(committed=2, first=7, end=9).lag == 2  # committed below the log's start: from the start
    assert Offsets(committed=9, first=0, end=9).lag == 0


def test_a_partition_whose_committed_offset_does_not_move_while_records_wait_is_stalled_after_the_limit():
    p = Progress(LIMIT)
    assert p.observe(0, "g", {A: Offsets(10, 0, 20)}) == []
    assert p.observe(LIMIT - 1, "g", {A: Offsets(10, 0, 25)}) == []
    (stall,) = p.observe(LIMIT, "g", {A: Offsets(10, 0, 30)})
    assert (stall.group, stall.tp, stall.lag, stall.committed, stall.seconds) == ("g", A, 20, 10, LIMIT)
    assert p.waiting(LIMIT, "g") == LIMIT


def test_committed_progress_restarts_the_clock_however_far_behind():
    p = Progress(LIMIT)
    for t in range(0, 300, 10):  # a backlog being worked through: always lag, always progress
        assert p.observe(t, "g", {A: Offsets(100 + t, 0, 10_000)}) == []
    assert p.waiting(290, "g") == 0


def test_a_partition_caught_up_is_never_stalled_and_its_clock_starts_again_when_records_come():
    p = Progress(LIMIT)
    p.observe(0, "g", {A: Offsets(10, 0, 20)})
    assert p.observe(20, "g", {A: Offsets(20, 0, 20)}) == []  # caught up (a quiet topic stays so)
    assert p.observe(100, "g", {A: Offsets(20, 0, 20)}) == []
    assert p.observe(110, "g", {A: Offsets(20, 0, 21)}) == []  # a new record: the clock starts now
    assert p.observe(110 + LIMIT - 1, "g", {A: Offsets(20, 0, 21)}) == []
    assert [s.tp for s in p.observe(110 + LIMIT, "g", {A: Offsets(20, 0, 21)})] == [A]


def test_only_the_stalled_partition_is_named_and_a_partition_that_left_is_forgotten():
    p = Progress(LIMIT)
    p.observe(0, "g", {A: Offsets(1, 0, 5), B: Offsets(1, 0, 5)})
    assert [s.tp for s in p.observe(LIMIT, "g", {A: Offsets(1, 0, 9), B: Offsets(4, 0, 9)})] == [A]
    p.observe(LIMIT + 1, "g", {B: Offsets(9, 0, 9)})  # A moved to another worker
    assert p.observe(LIMIT + 2, "g", {A: Offsets(1, 0, 9)}) == []  # back here: a fresh clock


def test_groups_are_judged_apart():
    p = Progress(LIMIT)
    p.observe(0, "g", {A: Offsets(1, 0, 5)})
    p.observe(0, "h", {A: Offsets(1, 0, 5)})
    p.observe(LIMIT / 2, "h", {A: Offsets(2, 0, 5)})
    assert [s.group for s in p.observe(LIMIT, "g", {A: Offsets(1, 0, 5)})] == ["g"]
    assert p.observe(LIMIT, "h", {A: Offsets(2, 0, 5)}) == []


def test_an_observation_that_failed_starts_every_clock_again():
    p = Progress(LIMIT)
    p.observe(0, "g", {A: Offsets(1, 0, 5)})
    p.forget()  # the broker did not answer: time unseen never counts
    assert p.observe(LIMIT, "g", {A: Offsets(1, 0, 5)}) == []
    assert [s.tp for s in p.observe(2 * LIMIT, "g", {A: Offsets(1, 0, 5)})] == [A]


def test_a_rebalance_or_recovery_pauses_the_clocks_and_one_that_never_ends_is_a_stall():
    p = Progress(LIMIT)
    p.observe(0, "g", {A: Offsets(1, 0, 5)})
    assert p.unsettled(LIMIT - 5, "g") == []
    assert p.observe(LIMIT + 5, "g", {A: Offsets(1, 0, 5)}) == []  # settled again: judged from now
    for t in range(100, 100 + int(UNSETTLED_FACTOR * LIMIT), 10):
        assert p.unsettled(t, "g") == []
    (stall,) = p.unsettled(100 + UNSETTLED_FACTOR * LIMIT, "g")
    assert (stall.group, stall.tp) == ("g", None)


async def test_a_batch_s_dead_letters_are_sent_together_not_one_ack_after_another():
    """A poison storm's batch awaited 5,000 acknowledgements in a row and outlasted the limit."""
    import asyncio

    from services.shared.stage import dead_letter_all

    class Sink:
        def __init__(self, n: int) -> None:
            self.n, self.in_flight, self.all_in = n, 0, asyncio.Event()

        async def dead_letter(self, record, error, input_name) -> None:
            self.in_flight += 1
            if self.in_flight == self.n:
                self.all_in.set()
            await self.all_in.wait()  # one at a time, the first would wait here for ever

    sink = Sink(50)
    await asyncio.wait_for(dead_letter_all(sink, [(i, "poison", "incidents") for i in range(50)]), 2)
    assert sink.in_flight == 50
