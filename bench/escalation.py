"""Escalation benchmark: throughput of one worker, p99 intake-ack -> agency topic, and the
raw aiokafka consume rate as the ceiling, all in the same run.

    flock /tmp/muster-heavy.lock .venv/bin/python bench/escalation.py [--events 60000] [--rate 200] [--seconds 20]

(with MUSTER_HOME and MUSTER_CACHE_DIR exported). The worker drains a backlog of
`--events` reports (1% severity-5 fires that escalate); its rate is read from its own
`muster_escalation_events_total` between the first processed record and the last.

Uses the running broker under a fresh topic prefix (deleted afterwards) and runs the worker
as `muster run escalation` in a subprocess, exactly as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import httpx
from aiokafka import TopicPartition

from services.shared import codec
from services.shared import events as ev
from services.shared.kafka import apply_topics, make_admin, make_consumer, make_producer
from services.shared.kafka_security import apply_acls, remove_acls_under
from services.shared.settings import REPO_ROOT, Settings
from services.shared.topics import TopicCatalog
from services.shared.wards import wards

CODES = sorted(wards())
TARGET_RATE = 5_000  # incident events/s through one worker
TARGET_P99_MS = 250  # at 200 events/s, intake's produce ack -> escalation on the agency topic


def incident(escalates: bool) -> ev.IncidentReported:
    now = datetime.now(timezone.utc)
    ward = random.choice(CODES)
    return ev.IncidentReported(
        incident_id=uuid.uuid4(), occurred_at=now, recorded_at=now,
        source=ev.Source(kind="control_room", id="bench"),
        category="fire" if escalates else "noise", severity=5 if escalates else 2,
        location=ev.Location(ward_code=ward), description="benchmark incident",
    )


async def produce_burst(producer, topic: str, n: int, escalate_every: int) -> None:
    batch = []
    for i in range(n):
        enc = codec.encode(incident(i % escalate_every == 0))
        batch.append(producer.send(topic, enc.value, key=enc.key, headers=enc.headers))
        if len(batch) >= 2000:
            await asyncio.gather(*[await f for f in batch])
            batch = []
    if batch:
        await asyncio.gather(*[await f for f in batch])


async def raw_consume_rate(settings: Settings, topic: str, partitions: int, n: int) -> float:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    seen, start = 0, time.perf_counter()
    while seen < n:
        for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
            seen += len(records)
    elapsed = time.perf_counter() - start
    await consumer.stop()
    return seen / elapsed


async def processed(port: int) -> float:
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)).text
        except httpx.HTTPError:
            return -1
    for line in text.splitlines():
        if line.startswith('muster_escalation_events_total{input="incidents"}'):
            return float(line.split()[-1])
    return 0


async def main(args: argparse.Namespace) -> None:
    base = Settings()
    settings = base.model_copy(update={"topic_prefix": f"bench-{uuid.uuid4().hex[:6]}."})
    catalog = TopicCatalog.from_settings(settings)
    incidents = catalog.name("incidents")
    partitions = catalog.spec_of("incidents").partitions
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog)
    await asyncio.to_thread(apply_acls, settings, catalog)  # the worker runs as its own principal
    producer = make_producer(settings.as_principal("intake"), linger_ms=5)  # the incidents topic's producer
    await producer.start()
    port = 19000 + random.randint(0, 900)
    env = {**os.environ, "MUSTER_TOPIC_PREFIX": settings.topic_prefix, "MUSTER_ESCALATION_METRICS_PORT": str(port),
           "MUSTER_LOG_LEVEL": "WARNING", "MUSTER_LOG_FORMAT": "json"}
    worker = None
    try:
        # 1. a backlog, and the raw consume rate of it (the ceiling)
        await produce_burst(producer, incidents, args.events, escalate_every=100)
        raw = await raw_consume_rate(settings.as_principal("escalation"), incidents, partitions, args.events)

        # 2. one worker drains the backlog
        worker = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "escalation"], env=env, cwd=REPO_ROOT,
                                  stdout=subprocess.DEVNULL, stderr=open("/tmp/bench-escalation.log", "wb"),
                                  start_new_session=True)
        while await processed(port) <= 0:
            await asyncio.sleep(0.05)
        first, t_first = await processed(port), time.perf_counter()
        while (done := await processed(port)) < args.events:
            await asyncio.sleep(0.5)  # each scrape costs the worker CPU: scrape rarely
        throughput = (done - first) / (time.perf_counter() - t_first)

        # 3. latency at a steady rate: intake's produce ack -> the escalation on the fire topic
        fire = catalog.escalation_topic("fire", exercise=False)
        consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=5)
        await consumer.start()
        fire_tps = [TopicPartition(fire, p) for p in range(catalog.spec_of("escalations.fire").partitions)]
        consumer.assign(fire_tps)
        await consumer.seek_to_end(*fire_tps)
        acked: dict[bytes, float] = {}
        received: dict[bytes, float] = {}

        async def collect() -> None:
            while True:
                for records in (await consumer.getmany(timeout_ms=50)).values():
                    now = time.time()
                    for r in records:
                        received.setdefault(r.key, now)

        collector = asyncio.create_task(collect())
        total = int(args.rate * args.seconds)
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = incident(i % 4 == 0)
            enc = codec.encode(event)
            await producer.send_and_wait(incidents, enc.value, key=enc.key, headers=enc.headers)
            if i % 4 == 0:
                acked[enc.key] = time.time()
        deadline = time.perf_counter() + 30
        while len(received.keys() & acked.keys()) < len(acked) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        collector.cancel()
        await consumer.stop()
        latencies = sorted((received[k] - acked[k]) * 1000 for k in acked if k in received)
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731

        p99 = p(0.99)
        met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
        print(f"raw aiokafka consume (ceiling): {raw:,.0f} events/s over {args.events:,} events (same run)")
        print(f"escalation worker throughput:   {throughput:,.0f} events/s through one worker, 1% escalate "
              f"(target >= {TARGET_RATE:,}: {met(throughput >= TARGET_RATE)})")
        print(f"latency at {args.rate:g} events/s for {args.seconds:g}s, produce ack -> fire topic, "
              f"{len(latencies)}/{len(acked)} escalations: p50 {statistics.median(latencies):.1f} ms, "
              f"p95 {p(0.95):.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms "
              f"(target p99 <= {TARGET_P99_MS} ms: {met(p99 <= TARGET_P99_MS and len(latencies) == len(acked))})")
    finally:
        if worker and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        await producer.stop()
        await asyncio.to_thread(remove_acls_under, settings, settings.topic_prefix)
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    asyncio.run(main(parser.parse_args()))
