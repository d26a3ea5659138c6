"""Benchmark: four-week borough histories replayed through one tension worker, each beside
the raw aiokafka consume rate of the same topic as the ceiling:

- reports only: >= 200,000 IncidentReported (tests/tension_history.py);
- mixed: what `muster simulate` produces (services/simulator) for four weeks, reports and
  all their follow-up facts (acknowledged, dispatched, status changes...), >= 200,000 events.

    MUSTER_HOME=... .venv/bin/python bench/tension.py [--per-ward-daily 360] [--intensity 7] [--only mixed]

Besides wall-clock events/s it prints events per CPU-second of the process, steadier on a
shared machine.

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
from collections import Counter
from datetime import timedelta
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.shared.codec import encode
from services.shared.kafka import apply_topics, make_admin, make_consumer, make_producer, topic_partitions
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from services.shared.logging import configure_logging
from services.simulator.generator import FeedConfig, generate
from services.tension.app import app_id_for, build, rekey_group_for
from tests.tension_history import START, WHITECHAPEL, background, burst, in_time_order


async def committed_all(admin, settings: Settings, group: str, topics: list[str]) -> bool:
    tps = [tp for t in topics for tp in await topic_partitions(settings, [t])]
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
        tps = await topic_partitions(settings, [topic])
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


async def replay(base: Settings, name: str, encoded: list) -> float:
    """Produce `encoded` to fresh topics, print the raw consume ceiling, then time one worker
    from start-up until it has committed every record of the incidents and by-ward topics."""
    settings = base.model_copy(update={"topic_prefix": f"bench-{uuid.uuid4().hex[:8]}.", "home": Path(tempfile.mkdtemp())})
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog)
    try:
        producer = make_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
        await producer.start()
        t0 = time.perf_counter()
        for e in encoded:
            await producer.send(catalog.name("incidents"), e.value, key=e.key, headers=e.headers)
        await producer.flush()
        await producer.stop()
        print(f"  produce: {len(encoded) / (time.perf_counter() - t0):,.0f} events/s")

        raw = await raw_consume_rate(settings, catalog.name("incidents"), len(encoded))
        print(f"  ceiling: raw aiokafka consume {raw:,.0f} events/s (no decoding)")

        tension = build(settings)
        group = app_id_for(settings)
        inputs = [(rekey_group_for(group), [catalog.name("incidents")]), (group, [f"{group}-by-ward"])]
        t0, cpu0 = time.perf_counter(), time.process_time()
        await tension.app.start()
        try:
            while not all([await committed_all(admin, settings, g, topics) for g, topics in inputs]):
                await asyncio.sleep(0.5)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        finally:
            await tension.app.stop()
        alerts = await published(settings, catalog.name("tension.alerts"))
        rate = len(encoded) / elapsed
        print(f"  tension worker: {len(encoded):,} events in {elapsed:.1f}s (start-up and commit included) = "
              f"{rate:,.0f} events/s; {cpu:.1f} CPU-s = {len(encoded) / cpu:,.0f} events per CPU-second; "
              f"{alerts} alerts published")
        print(f"  targets: >= 5,000 events/s: {'met' if rate >= 5000 else 'NOT met'}; "
              f"replay < 120s: {'met' if elapsed < 120 else 'NOT met'}")
        return rate
    finally:
        await drop_run_topics(admin, settings)


async def published(settings: Settings, topic: str) -> int:
    """How many records a topic holds now (what a worker published to it)."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(await topic_partitions(settings, [topic]))).values())
    finally:
        await consumer.stop()


async def drop_run_topics(admin, settings: Settings) -> None:  # admin: an AIOKafkaAdminClient, closed here
    """Delete every topic of the run's own prefix (and its ACLs), then close the admin client."""
    from services.shared.kafka_security import remove_acls_under

    await asyncio.to_thread(remove_acls_under, settings, settings.topic_prefix)
    existing = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
    if existing:
        await admin.delete_topics(existing)
    await admin.close()


def reports_only(per_ward_daily: float) -> list:
    history = in_time_order(background(per_ward_daily=per_ward_daily),
                            burst(WHITECHAPEL, START + timedelta(days=17, hours=18), hate=200, tension=150))
    return [encode(e) for e in history]


def mixed(intensity: float) -> list:
    """What `muster simulate` produces for four weeks: reports and every follow-up fact."""
    feed = FeedConfig(start=START, hours=28 * 24, intensity=intensity, scenarios=(("whitechapel-hate", None),))
    return [encode(e) for e in generate(feed)]


async def main(per_ward_daily: float, intensity: float, which: str) -> None:
    configure_logging("WARNING")
    base = Settings()
    for name, make in (("reports only", lambda: reports_only(per_ward_daily)), ("mixed", lambda: mixed(intensity))):
        if which not in ("both", name.split()[0]):
            continue
        t0 = time.perf_counter()
        encoded = make()
        kinds = Counter(dict(e.headers)["event_type"].decode() for e in encoded)
        print(f"{name}: {len(encoded):,} events over 28 days ({kinds['IncidentReported']:,} reports), "
              f"generated in {time.perf_counter() - t0:.1f}s")
        await replay(base, name, encoded)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-ward-daily", type=float, default=360.0, help="reports per ward per day (360 -> 201,600)")
    parser.add_argument("--intensity", type=float, default=7.0, help="simulator intensity of the mixed stream (7 -> ~240,000)")
    parser.add_argument("--only", choices=("both", "reports", "mixed"), default="both")
    args = parser.parse_args()
    asyncio.run(main(args.per_ward_daily, args.intensity, args.only))
