"""The broker dies under load and comes back: every 2xx is on the topic, requests during the
outage get 503 within the bound (none hang), and intake recovers by itself.

Uses a broker of its own (own MUSTER_HOME and ports), never the shared one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from services.dev import LocalKafka
from services.shared.kafka import apply_topics, make_admin
from services.shared.kafka_security import apply_acls
from services.shared.topics import TopicCatalog
from tests.support import free_kafka_and_pg_ports
from tests.integration.intake.conftest import bearer, read_topic, running_intake
from tests.integration.intake.test_api import report
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

BOUND_S = 2.0


@pytest.fixture
async def own_broker(tmp_path, test_settings, database):
    kafka_port, _ = free_kafka_and_pg_ports()
    settings = test_settings.model_copy(
        update={
            "home": tmp_path / "home",
            "kafka_bootstrap": f"127.0.0.1:{kafka_port}",
            "kafka_heap": "256m",
            "intake_publish_timeout_s": BOUND_S,
        }
    )
    broker = LocalKafka(settings)
    await asyncio.to_thread(broker.up)
    admin = make_admin(settings)
    await admin.start()
    try:
        await apply_topics(admin, TopicCatalog.from_settings(settings))
    finally:
        await admin.close()
    await asyncio.to_thread(apply_acls, settings, TopicCatalog.from_settings(settings))  # intake's own grants
    yield settings, broker
    await asyncio.to_thread(broker.down)


async def test_a_broker_outage_under_load_loses_no_acknowledged_event_and_intake_recovers(own_broker):
    settings, broker = own_broker
    outcomes: list[tuple[int, str | None, float]] = []  # status, event_id, seconds
    stop = asyncio.Event()

    async with running_intake(settings) as intake:

        async def load():
            for _ in range(5000):  # bounded in count; stopped by the test in time
                if stop.is_set():
                    return
                started = time.monotonic()
                response = await intake.post("/v1/incidents", json=report(), headers=bearer(settings))
                body = response.json()
                outcomes.append((response.status_code, body.get("event_id"), time.monotonic() - started))

        loader = asyncio.create_task(load())
        await wait_until(lambda: sum(1 for s, _, _ in outcomes if s == 202) >= 20, timeout=30, what="load before the kill")
        os.kill(broker.pid(), signal.SIGKILL)
        killed_at = len(outcomes)
        await wait_until(
            lambda: sum(1 for s, _, _ in outcomes[killed_at:] if s == 503) >= 3, timeout=30, what="503s during the outage"
        )
        await asyncio.to_thread(broker.up)
        restarted_at = len(outcomes)
        await wait_until(
            lambda: any(s == 202 for s, _, _ in outcomes[restarted_at:]), timeout=60, what="intake to recover by itself"
        )
        stop.set()
        await asyncio.wait_for(loader, 30)

    assert {s for s, _, _ in outcomes} <= {202, 503}
    assert max(seconds for _, _, seconds in outcomes) < BOUND_S + 2.0, "a request waited past the bound"
    acknowledged = {event_id for status, event_id, _ in outcomes if status == 202}
    records = await read_topic(settings, TopicCatalog.from_settings(settings))
    on_topic = {json.loads(record.value)["event_id"] for record in records}
    assert acknowledged <= on_topic, f"{len(acknowledged - on_topic)} acknowledged events are missing from the topic"
