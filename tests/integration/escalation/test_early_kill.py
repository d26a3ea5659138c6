"""kill -9 of the escalation worker in its first seconds (its first recovery, reports being
packed as it starts): the restarted worker records every report in its table and its groups
catch up, no lag left for good. Once in CI a restarted worker stalled here (faust's stall after
a rejoin, docs/chaos.md): the test plays the worker's supervisor, as a deployment does, so its
progress watchdog (10 s here) ends such a stall and the worker starts again; how many times it
did is printed."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from services.shared.events import utcnow
from services.shared.kafka import make_consumer, make_producer
from tests.factories import reported
from tests.integration.escalation.support import Tap, Worker, send, write_test_rules
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KILL_AFTER_START = 1.5  # seconds after its /metrics answer: in its first recovery or just after
STALL_SECONDS = 10  # its progress watchdog's limit; the test plays the supervisor (Worker.tend)


async def _lags(settings, groups: dict[str, list[str]], partitions: int) -> dict[tuple[str, str, int], int]:
    """(group, topic, partition) -> end offset less the group's committed offset, where not 0."""
    out = {}
    for group, topics in groups.items():
        consumer = make_consumer(settings, group_id=group)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                lag = ends[tp] - ((await consumer.committed(tp)) or 0)
                if lag:
                    out[(group, tp.topic, tp.partition)] = lag
        finally:
            await consumer.stop()
    return out


async def test_kill_9_in_the_worker_s_first_seconds_loses_no_report(own_topics, tmp_path):
    settings, catalog = own_topics
    worker = Worker(settings, write_test_rules(tmp_path / "rules.yaml", 3600), tmp_path / "worker.log",
                    env={"MUSTER_PROCESSOR_STALL_SECONDS": str(STALL_SECONDS)})
    producer = make_producer(settings)
    await producer.start()
    sent: list = []
    stop = asyncio.Event()

    async def load() -> None:  # ~100 reports/s at most, spread over the partitions by incident id
        while not stop.is_set():
            incident = reported(occurred_at=utcnow(), recorded_at=utcnow(), category="other", severity=1)
            await send(producer, catalog, incident)
            sent.append(incident.incident_id)
            await asyncio.sleep(0.01)

    tap = None
    loader = asyncio.create_task(load())
    worker.start()
    try:
        await worker.wait_running()
        await asyncio.sleep(KILL_AFTER_START)  # the moment of the kill is the fault itself, not a wait
        worker.kill9()
        await asyncio.sleep(1.0)
        stop.set()
        await loader
        worker.start()
        await worker.wait_ready()
        tap = await Tap(settings, {worker.changelog: catalog.spec_of("incidents").partitions}).start()

        def all_in_table() -> bool:
            worker.tend()  # faust's stall after a rejoin (docs/chaos.md): its watchdog stops it, it starts again
            return all(tap.state_of(worker.changelog, i) is not None for i in sent)
        await wait_until(all_in_table, 90, interval=0.5,
                         what=f"every report in the restarted worker's table ({len(sent)} sent)")
        group = settings.topic_prefix + "muster-escalation"
        groups = {group: [catalog.name("escalation.packed"), catalog.name("escalation.control")],
                  f"{group}-pack": [catalog.name("incidents")]}
        partitions = catalog.spec_of("incidents").partitions

        async def caught_up() -> bool:
            worker.tend()
            return not await _lags(settings, groups, partitions)
        await wait_until(caught_up, 30, interval=0.5, what="every group's committed offsets at the end")
        print(f"stopped by its progress watchdog and started again: {worker.stalls} times")
    finally:
        stop.set()
        if loader:
            await asyncio.gather(loader, return_exceptions=True)
        worker.stop()
        if tap:
            await tap.stop()
        await producer.stop()
