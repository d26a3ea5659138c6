"""Projector benchmark: sustained events/s into PostgreSQL (offsets in the same transaction),
beside the one-event-per-transaction rate of the same write path, measured in the same run;
then end-to-end latency from the producer's acknowledgement to the row being visible.

    export MUSTER_HOME=/work/main/.muster MUSTER_CACHE_DIR=/work/main/.muster/cache
    .venv/bin/python bench/projector.py --events 200000 --single 2000 --rate 500 --seconds 20

Uses the running broker and database (`muster dev up`), under its own topic prefix and a
fresh database per measurement, all removed at the end. The batched rate is measured for one
projector process and for two in one consumer group (`--workers 1,2`): the projector scales
out by partition like any consumer group. Targets: >= 20,000 events/s; p95 <= 500 ms at 500/s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.projector import repository, schema
from services.projector.app import serve
from services.shared.runtime import tune_gc
from services.shared.kafka import topic_partitions
from services.projector.repository import connect
from services.projector.service import Projector, build_batch
from services.shared.events import EVENT_TYPES
from services.shared.codec import encode
from services.shared.logging import configure_logging
from services.shared.kafka import apply_topics, make_admin, make_consumer, make_producer
from services.shared.kafka_security import apply_acls, remove_acls_under
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from tests.factories import reported
from tests.projector_load import stream


async def produce(settings: Settings, topic: str, events) -> float:
    producer = make_producer(settings, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = []
        for event in events:
            e = encode(event)
            futures.append(await producer.send(topic, e.value, key=e.key, headers=e.headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(events) / (time.perf_counter() - started)


def _worker(settings: Settings) -> None:
    """One projector process, as `muster run projector` runs it (without its metrics server)."""
    configure_logging("WARNING")
    tune_gc()
    asyncio.run(serve(settings))


async def batched_rate(settings: Settings, total: int, workers: int) -> tuple[float, int]:
    """Run `workers` projector processes in one group until they have applied `total` records.

    The rate is taken from the first commit to the last; the batch count from the offsets table's
    commits is not visible across processes, so batches are counted by the in-process projector
    only when workers == 1."""
    projector, task, procs = None, None, []
    settings = settings.as_principal("projector")  # as `muster run projector` authenticates
    if workers == 1:
        projector = Projector(settings)
        task = asyncio.create_task(projector.run())
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(settings,), daemon=True) for _ in range(workers)]
        for proc in procs:
            proc.start()
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    group = settings.projector_consumer_group
    first_at = first_n = None
    while True:
        n = await conn.fetchval(
            "select coalesce(sum(next_offset), 0)::bigint from projector_offsets where consumer_group = $1", group
        )
        now = time.perf_counter()
        if n and first_at is None:
            first_at, first_n = now, n
        if n >= total:
            break
        await asyncio.sleep(0.05)
    rate = (total - first_n) / (now - first_at) if now > first_at else float("nan")
    await conn.close()
    if projector is not None:
        projector.stop()
        await task
        return rate, projector.batches
    for proc in procs:
        proc.terminate()  # SIGTERM: the batch in hand is finished first
    for proc in procs:
        proc.join(30)
    return rate, -1


async def single_rate(settings: Settings, topic: str, count: int) -> float:
    """The same write path with one record per transaction (the baseline)."""
    settings = settings.as_principal("projector")
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    conn = await connect(settings.database_url.get_secret_value())
    try:
        tps = await topic_partitions(settings, [topic])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records = []
        while len(records) < count:
            for rs in (await consumer.getmany(timeout_ms=500, max_records=count)).values():
                records += rs
        records = records[:count]
        started = time.perf_counter()
        for record in records:
            await repository.write_batch(conn, await build_batch([record], {record.topic: frozenset(EVENT_TYPES)}), "bench-single")
        return count / (time.perf_counter() - started)
    finally:
        await conn.close()
        await consumer.stop()


async def latency(settings: Settings, topic: str, rate: int, seconds: int) -> list[float]:
    """Produce fresh reports at `rate`/s; time from each ack until its row is visible."""
    projector = Projector(settings.as_principal("projector"))
    task = asyncio.create_task(projector.run())
    producer = make_producer(settings.as_principal("intake"))  # the incidents topic's producer
    await producer.start()
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    acked: dict[uuid.UUID, float] = {}
    visible: dict[uuid.UUID, float] = {}
    done = asyncio.Event()

    async def poll() -> None:
        while not (done.is_set() and len(visible) >= len(acked)):
            pending = [i for i in acked if i not in visible]
            if pending:
                rows = await conn.fetch("select event_id from incident_events where event_id = any($1::uuid[])", pending)
                now = time.perf_counter()
                for r in rows:
                    visible[r[0]] = now
            await asyncio.sleep(0.005)

    poller = asyncio.create_task(poll())
    await asyncio.sleep(3)  # let the projector join its group first
    try:
        start = time.perf_counter()
        for k in range(rate * seconds):
            await asyncio.sleep(max(0.0, start + k / rate - time.perf_counter()))
            event = reported()
            e = encode(event)
            fut = await producer.send(topic, e.value, key=e.key, headers=e.headers)
            fut.add_done_callback(lambda _f, i=event.event_id: acked.__setitem__(i, time.perf_counter()))
        await producer.flush()
        done.set()
        await asyncio.wait_for(poller, 60)
    finally:
        await producer.stop()
        await conn.close()
        projector.stop()
        await task
    return [visible[i] - acked[i] for i in acked]


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


async def fresh_database(admin_dsn: str, dsn: str) -> None:
    """Create and migrate the database of `dsn`: every measurement starts from an empty store."""
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'create database "{urlsplit(dsn).path.lstrip("/")}"')
    await conn.close()
    conn = await asyncpg.connect(dsn)
    await schema.migrate(conn)
    await conn.close()


async def main(args) -> None:
    configure_logging("WARNING")
    base = Settings()
    run = uuid.uuid4().hex[:8]
    url = urlsplit(base.database_url.get_secret_value())
    admin_dsn = urlunsplit((url.scheme, url.netloc, "/postgres", "", ""))
    databases: list[str] = []

    def settings_for(label: str) -> Settings:
        dsn = urlunsplit((url.scheme, url.netloc, f"/muster_bench_{run}_{label}", "", ""))
        databases.append(dsn)
        return base.model_copy(update={
            "topic_prefix": f"bench-{run}.", "database_url": type(base.database_url)(dsn),
            # under the projector principal's group prefix (topics.yaml), as its ACLs require
            "projector_consumer_group": f"bench-{run}.muster-projector-{label}", "projector_metrics_port": 0,
        })

    run_settings = base.model_copy(update={"topic_prefix": f"bench-{run}."})
    catalog = TopicCatalog.from_settings(run_settings)
    admin = make_admin(base)
    await admin.start()
    try:
        await apply_topics(admin, catalog)
        await asyncio.to_thread(apply_acls, run_settings, catalog)  # each principal's grants (secured broker)
        topic = catalog.name("incidents")
        events = with_people(stream(args.events, seed=3), args.people, sealed=not args.plain)
        produced = await produce(run_settings.as_principal("intake"), topic, events)
        total = len(events)
        del events  # a live projector holds no event list: keep the collector's work the same as in production
        tune_gc()
        print(f"produced {total:,} events at {produced:,.0f}/s (producer ceiling, same run)")
        best, caught_up = 0.0, None
        for workers in args.workers:
            settings = caught_up = settings_for(f"w{workers}")
            await fresh_database(admin_dsn, settings.database_url.get_secret_value())
            rate, batches = await batched_rate(settings, total, workers)
            best = max(best, rate)
            how = f"one process, {batches} transactions" if batches >= 0 else f"{workers} processes in one group"
            print(f"batched projector:            {rate:>9,.0f} events/s  ({how}; offsets in each transaction)")
        settings = settings_for("single")
        await fresh_database(admin_dsn, settings.database_url.get_secret_value())
        single = await single_rate(settings, topic, args.single)
        print(f"one event per transaction:    {single:>9,.0f} events/s  (same write path, {args.single:,} events)")
        print(f"speed-up: {best / single:.1f}x   target >= 20,000 events/s: {'met' if best >= 20_000 else 'NOT met'}")
        lat = await latency(caught_up, topic, args.rate, args.seconds)  # a group at the end of the topic
        p50, p95, p99 = pct(lat, 50) * 1000, pct(lat, 95) * 1000, pct(lat, 99) * 1000
        print(f"end to end at {args.rate}/s for {args.seconds}s ({len(lat):,} events), produce-ack -> row visible: "
              f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {max(lat) * 1000:.0f} ms   "
              f"target p95 <= 500 ms: {'met' if p95 <= 500 else 'NOT met'}")
    finally:
        await asyncio.to_thread(remove_acls_under, run_settings, run_settings.topic_prefix)
        await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(f"bench-{run}.")])
        await admin.close()
        conn = await asyncpg.connect(admin_dsn)
        for dsn in databases:
            await conn.execute(f'drop database if exists "{urlsplit(dsn).path.lstrip("/")}" with (force)')
        await conn.close()


def with_people(events: list, people: int, *, sealed: bool) -> list:
    """Each report naming `people` persons, sealed as intake publishes them (or in the clear, as
    before sealing): what sealing costs the projector."""
    if not people:
        return events
    from services.shared import events as ev, sealing

    named = tuple(ev.Person(role="victim", name=f"Bench Person {i}", age=30 + i, description="bench")
                  for i in range(people))
    out = []
    for e in events:
        if e.event_type == "IncidentReported":
            e = e.model_copy(update={"people": named})
            e = sealing.sealed(e, sealing.new_key()) if sealed else e
        out.append(e)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--single", type=int, default=2_000, help="events for the one-per-transaction baseline")
    parser.add_argument("--rate", type=int, default=500, help="events/s for the latency run")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=lambda v: [int(n) for n in v.split(",")], default=[1, 2],
                        help="projector processes in the group, one measurement each (e.g. 1,2)")
    parser.add_argument("--people", type=int, default=0, help="people named in each report (sealed unless --plain)")
    parser.add_argument("--plain", action="store_true", help="with --people: in the clear (the store before sealing)")
    asyncio.run(main(parser.parse_args()))
