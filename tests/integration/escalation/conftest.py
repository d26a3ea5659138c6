"""One escalation worker (a `muster run escalation` subprocess) for the scenario tests,
on this run's topics, with short acknowledgement deadlines."""

from __future__ import annotations

import pytest

from services.shared.kafka import make_producer
from tests.factories import reported
from tests.integration.escalation.support import Tap, Worker, send, tapped, write_test_rules
from tests.support import wait_until

DEADLINE_SECONDS = 4.0


@pytest.fixture(scope="module")
async def worker(test_settings, topics, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("escalation")
    w = Worker(test_settings, write_test_rules(tmp / "rules.yaml", DEADLINE_SECONDS), tmp / "worker.log")
    w.start()
    try:
        await w.wait_running()
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
async def producer(test_settings):
    p = make_producer(test_settings)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture(scope="module")
async def tap(test_settings, topics, worker, producer):
    # The changelog exists once the worker has written its first state: a probe report does it.
    probe = reported(severity=1)
    await send(producer, topics, probe)
    async def processed() -> bool:
        return await worker.metric("muster_escalation_events_total", input="incidents") > 0

    await wait_until(processed, 60, what="the worker to process a first record")
    t = await Tap(test_settings, tapped(topics, worker.changelog)).start()
    yield t
    await t.stop()
