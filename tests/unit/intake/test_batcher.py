"""MicroBatcher: concurrent single calls become one bulk call."""

from __future__ import annotations

import asyncio

from services.intake.batcher import MicroBatcher


async def test_concurrent_submissions_share_bulk_calls_and_each_gets_its_own_result():
    calls: list[list[int]] = []

    async def bulk(items: list[int]) -> list[int]:
        calls.append(items)
        await asyncio.sleep(0)
        return [i * 10 for i in items]

    batcher = MicroBatcher(bulk)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert len(calls) < 50 and sorted(sum(calls, [])) == list(range(50))


async def test_a_failed_bulk_call_fails_every_waiter_of_that_batch_and_the_next_batch_still_runs():
    async def bulk(items: list[int]) -> list[int]:
        if 0 in items:
            raise RuntimeError("database down")
        return items

    batcher = MicroBatcher(bulk, max_size=1)
    first, second = await asyncio.gather(batcher.submit(0), batcher.submit(7), return_exceptions=True)
    assert isinstance(first, RuntimeError) and second == 7


async def test_max_size_bounds_each_bulk_call():
    sizes: list[int] = []

    async def bulk(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    batcher = MicroBatcher(bulk, max_size=4)
    await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert max(sizes) <= 4 and sum(sizes) == 10


async def test_a_lone_submission_is_answered():
    async def bulk(items):
        return items

    assert await MicroBatcher(bulk).submit(1) == 1
