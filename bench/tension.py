"""Benchmark: a simulated four-week borough history (>= 200,000 reports) replayed through
one tension worker, beside the raw aiokafka consume rate of the same topic as the ceiling.

    MUSTER_HOME=... .venv/bin/python bench/tension.py [--per-ward-daily 360]

Targets: >= 5,000 events/s through one worker; the four-week replay in under two minutes.
Uses its own topic prefix (bench-<id>.) on the running broker and deletes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.shared.codec import encode  # noqa: E402
from services.shared.kafka import apply_topics, make_admin, make_consumer, make_producer  # noqa: E402
from services.shared.settings import Settings  # noqa: E402
from services.shared.topics import TopicCatalog  # noqa: E402
from services.tension.app import app_id_for, build  # noqa: E402
from tests.tension_history import START, WHITECHAPEL, background, burst, in_time_order  # noqa: E402


async def partitions_of(admin, topic: str) -> list[TopicPartition]:
    described = await admin.describe_topics([topic])
    return [TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]]


async def committed_all(admin, settings: Settings, group: str, topics: list[str]) -> bool:
    tps = [tp for t in topics for tp in await partitions_of(admin, t)]
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    committed = await admin.list_consumer_group_offsets(group)
    return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())


async def raw_consume_rate(settings: Settings, topic: str, total: int) -> float:
    consumer = make_consumer(settings, group_id=None, max_poll_records=5000)
    await consumer.start()
    try:
        admin = make_admin(settings)
        await admin.start()
        tps = await partitions_of(admin, topic)
        await admin.close()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, started = 0, time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def main(per_ward_daily: float) -> None:
    base = Settings()
    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"topic_prefix": f"bench-{run}.", "home": Path(tempfile.mkdtemp())})
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog)
    try:
        t0 = time.perf_counter()
        from datetime import timedelta

        history = in_time_order(background(per_ward_daily=per_ward_daily),
                                burst(WHITECHAPEL, START + timedelta(days=17, hours=18), hate=200, tension=150))
        encoded = [encode(e) for e in history]
        print(f"history: {len(history):,} reports over 28 days in 20 wards, generated in {time.perf_counter() - t0:.1f}s")
        producer = make_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
        await producer.start()
        t0 = time.perf_counter()
        for e in encoded:
            await producer.send(catalog.name("incidents"), e.value, key=e.key, headers=e.headers)
        await producer.flush()
        await producer.stop()
        produce_s = time.perf_counter() - t0
        print(f"produce: {len(encoded) / produce_s:,.0f} events/s ({produce_s:.1f}s)")

        raw = await raw_consume_rate(settings, catalog.name("incidents"), len(encoded))
        print(f"ceiling: raw aiokafka consume {raw:,.0f} events/s (no decoding)")

        wiring = build(settings)
        group = app_id_for(settings)
        t0 = time.perf_counter()
        await wiring.app.start()
        try:
            while not await committed_all(admin, settings, group, [catalog.name("incidents"), f"{group}-by-ward"]):
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - t0
        finally:
            await wiring.app.stop()
        alerts = await partitions_of(admin, catalog.name("tension.alerts"))
        consumer = make_consumer(settings, group_id=None)
        await consumer.start()
        ends = await consumer.end_offsets(alerts)
        await consumer.stop()
        print(f"tension worker: {len(encoded):,} events replayed in {elapsed:.1f}s "
              f"(start-up and commit included) = {len(encoded) / elapsed:,.0f} events/s; "
              f"{sum(ends.values())} alerts published")
        print(f"targets: >= 5,000 events/s: {'met' if len(encoded) / elapsed >= 5000 else 'NOT met'}; "
              f"four-week replay < 120s: {'met' if elapsed < 120 else 'NOT met'}")
    finally:
        existing = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if existing:
            await admin.delete_topics(existing)
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-ward-daily", type=float, default=360.0, help="reports per ward per day (360 -> 201,600)")
    asyncio.run(main(parser.parse_args().per_ward_daily))
