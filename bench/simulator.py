"""Simulator throughput: generation, and `muster simulate --load` to Kafka beside a raw aiokafka
producer sending the same records (the baseline, measured in the same run).

    MUSTER_TOPIC_PREFIX=bench. .venv/bin/python bench/simulator.py [N]

Writes to the prefixed incidents topic (created if missing); prints events/s for each.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from datetime import datetime, timezone

from services.shared.codec import encode
from services.shared.kafka import apply_topics, make_admin, make_producer
from services.shared.settings import get_settings
from services.shared.topics import TopicCatalog
from services.simulator import app as simulator
from services.simulator.generator import FeedConfig, generate

START = datetime(2026, 11, 20, tzinfo=timezone.utc)


async def main(n: int) -> None:
    settings = get_settings()
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    try:
        await apply_topics(admin, catalog)
    finally:
        await admin.close()
    topic = catalog.name("incidents")

    began = time.perf_counter()
    events = list(itertools.islice(generate(FeedConfig(start=START, hours=24 * 365 * 10, seed=1)), n))
    generated = time.perf_counter() - began
    print(f"generate (pydantic models)  : {n / generated:>10,.0f} events/s  ({n} in {generated:.2f}s)")

    records = [encode(e) for e in events]
    producer = make_producer(settings, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    began = time.perf_counter()
    futures = [await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in records]
    await producer.flush()
    await asyncio.gather(*futures)
    raw = time.perf_counter() - began
    await producer.stop()
    print(f"baseline raw aiokafka send  : {n / raw:>10,.0f} events/s  (same records, acks=all, idempotent)")

    options = simulator.Options(feed=FeedConfig(start=START, seed=2), events=n, progress=False)
    report = await simulator.load(settings, options)
    print(f"muster simulate --load      : {report.played.rate:>10,.0f} events/s  (to {topic}, every ack awaited)")
    rate = max(1000, round(report.played.rate / 4))
    options = simulator.Options(feed=FeedConfig(start=START, seed=3), events=min(n, rate * 5), progress=False,
                                pace=simulator.Pace(rate=rate))
    report = await simulator.load(settings, options)
    print(f"muster simulate --load --rate {rate}: {report.played.rate:>10,.0f} events/s achieved")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
