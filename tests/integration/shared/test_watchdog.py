"""The progress watchdog on the real secured broker, under a processor's own principal: a group
that keeps committing is never stalled however far behind; one whose consumer stops taking
records (paused, still in its group and heartbeating: what faust's stall after a rejoin looks
like from outside) is named within the limit, with the partitions that have records waiting."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.shared.kafka import make_consumer, make_producer
from services.shared.watchdog import Watchdog, Watched
from tests.support import wait_until

pytestmark = [pytest.mark.kafka]

STALL = 3.0
INTERVAL = 0.5


async def test_the_watchdog_names_a_group_that_stops_committing_and_never_one_that_keeps_up(own_topics):
    admin_settings, catalog = own_topics
    settings = admin_settings.as_principal("escalation")  # its rights (OffsetFetch, ListOffsets) are enough
    topic, group = catalog.name("incidents"), settings.topic_prefix + "muster-escalation-pack"
    consumer = make_consumer(settings, topic, group_id=group, enable_auto_commit=False)
    producer = make_producer(admin_settings)  # intake's part: escalation may not write the incidents topic
    await asyncio.gather(consumer.start(), producer.start())
    stalls: list = []
    watchdog = Watchdog(settings, STALL, interval=INTERVAL, on_stall=stalls.extend)
    watchdog.watch(Watched(group, consumer.assignment))
    stop, taking = asyncio.Event(), asyncio.Event()
    taking.set()

    sent, committed = [0], [0]

    async def produce() -> None:
        while not stop.is_set():
            await producer.send_and_wait(topic, f"r{sent[0]}".encode(), key=f"k{sent[0]}".encode())
            sent[0] += 1
            await asyncio.sleep(0.02)

    async def consume() -> None:
        while not stop.is_set():
            if not taking.is_set():
                await asyncio.sleep(0.05)
                continue
            batch = await consumer.getmany(timeout_ms=200)
            if batch:
                await consumer.commit()
                committed[0] += sum(map(len, batch.values()))

    tasks = [asyncio.create_task(produce()), asyncio.create_task(consume())]
    try:
        await wait_until(lambda: consumer.assignment(), 30, what="the group's assignment")
        await watchdog.start()
        began = time.monotonic()
        await wait_until(lambda: time.monotonic() - began > 3 * STALL or stalls, 4 * STALL + 5,
                         what="three limits of a group keeping up")
        assert stalls == [], f"a group that keeps committing was called stalled: {stalls}"
        assert sent[0] > 100 and committed[0] > 100, (sent, committed)  # it was under load all along

        taking.clear()  # the consumer stops taking records: it stays in the group, nothing is committed
        consumer.pause(*consumer.assignment())
        stopped = time.monotonic()
        await wait_until(lambda: stalls, STALL + 10 * INTERVAL + 5, what="the stall named")
        took = time.monotonic() - stopped
        assert STALL <= took <= STALL + 6 * INTERVAL + 2, f"named after {took:.1f}s (limit {STALL}s)"
        assert {s.group for s in stalls} == {group}
        waiting = {tp for tp in consumer.assignment()}
        assert {s.tp for s in stalls} <= waiting and stalls, stalls
        for s in stalls:
            assert s.lag > 0 and s.seconds >= STALL
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await watchdog.stop()
        await asyncio.gather(consumer.stop(), producer.stop(), return_exceptions=True)
