"""The projector's memory over a steady stream and a poison storm (issue 17, item 3).

One projector process, started as `muster run projector` starts it (serve(), tune_gc), against
the running broker and database under a topic prefix and a database of its own (both removed at
the end). This process feeds it valid incident facts at `--rate`/s for `--minutes`, with a poison
storm (`--storm-rate` undecodable and schema-invalid records a second on the incidents topic for
`--storm-seconds`) starting at `--storm-at` minutes. The projector samples its own RSS every 5 s
and, with `--trace N`, takes tracemalloc snapshots (N frames) at minute 1 and at the end, then
prints the top 15 differences by size, grouped by traceback.

    export MUSTER_HOME=/work/main/.muster MUSTER_CACHE_DIR=/work/main/.muster/cache
    .venv/bin/python bench/projector_memory.py --rate 70 --minutes 5 --storm-at 3 [--trace 25] [--trim]
    .venv/bin/python bench/projector_memory.py --dead-letter-rate 2000
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import threading
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.projector import fresh_database
from services.projector.app import serve
from services.shared.codec import encode
from services.shared.kafka import apply_topics, make_admin, make_producer
from services.shared.kafka_security import apply_acls, remove_acls_under
from services.shared.logging import configure_logging
from services.shared.runtime import tune_gc
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from tests.projector_load import stream

PAGE = os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def malloc_mb() -> tuple[float, float]:
    """glibc's view (mallinfo2): bytes in use by every allocation, Python's or not (pydantic-core's,
    asyncpg's, orjson's), and bytes the allocator holds from the system (main arena + thread arenas + mmap).
    In use flat while held grows: fragmentation; in use growing while tracemalloc is flat: native memory."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    m = libc.mallinfo2()
    return (m.uordblks + m.hblkhd) / 1e6, (m.arena + m.hblkhd) / 1e6


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


async def _sampler(out: Path, trace: int, snap_at: list[float], trim: bool) -> None:
    started = time.monotonic()
    next_trim = 30.0
    pending = sorted(snap_at)
    with open(out / "rss.jsonl", "a") as f:
        while True:
            t = time.monotonic() - started
            traced = tracemalloc.get_traced_memory()[0] / 1e6 if trace else None
            overhead = tracemalloc.get_tracemalloc_memory() / 1e6 if trace else 0.0
            in_use, held = malloc_mb()
            f.write(json.dumps({"t": round(t, 1), "rss_mb": round(rss_mb(), 1), "traced_mb": traced,
                                "tracemalloc_overhead_mb": round(overhead, 1), "malloc_in_use_mb": round(in_use, 1),
                                "malloc_held_mb": round(held, 1), "threads": threading.active_count()}) + "\n")
            f.flush()
            if trim and t >= next_trim:  # --trim: hand glibc's free pages back (malloc_trim), to tell retention from use
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                next_trim = t + 30
            if trace and pending and t >= pending[0]:
                tracemalloc.take_snapshot().dump(str(out / f"snap-{int(pending.pop(0))}.tm"))
            await asyncio.sleep(5)


def _worker(settings: Settings, out: str, trace: int, snap_at: list[float], trim: bool) -> None:
    """One projector process as `muster run projector` runs it (metrics server aside), sampling itself."""
    if trace:
        tracemalloc.start(trace)
    configure_logging("WARNING")
    tune_gc()

    async def main() -> None:
        sampler = asyncio.create_task(_sampler(Path(out), trace, snap_at, trim))
        try:
            await serve(settings)
        finally:
            sampler.cancel()

    asyncio.run(main())


POISON = (b"\xff\xfe not json at all", b'{"event_type": "IncidentReported", "schema_version": 1}', b"[]",
          b'{"event_type": "NoSuchEvent"}')


async def feed(settings: Settings, topic: str, rate: int, seconds: float, storm_at: float, storm_rate: int,
               storm_seconds: float) -> tuple[int, int]:
    producer = make_producer(settings.as_principal("intake"), linger_ms=5)
    await producer.start()
    events = iter(stream(int(rate * seconds * 1.2) + 100, seed=11))
    sent = poison = 0
    try:
        start = time.monotonic()
        tick = 0.1
        k = 0
        while (now := time.monotonic() - start) < seconds:
            k += 1
            for _ in range(int(rate * tick)):
                e = encode(next(events))
                await producer.send(topic, e.value, key=e.key, headers=e.headers)
                sent += 1
            if storm_at <= now < storm_at + storm_seconds:
                for i in range(int(storm_rate * tick)):
                    await producer.send(topic, POISON[i % len(POISON)], key=uuid.uuid4().bytes)
                    poison += 1
            await asyncio.sleep(max(0.0, start + k * tick - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()
    return sent, poison


def summarise(out: Path, trace: int, top: int) -> None:
    rows = [json.loads(line) for line in open(out / "rss.jsonl")]
    for r in rows[:: max(1, len(rows) // 40)] + rows[-1:]:
        print(f"  t={r['t']:>6.0f}s rss={r['rss_mb']:>6.1f} MB traced={r['traced_mb'] or 0:>6.1f} MB "
              f"(tracemalloc's own {r['tracemalloc_overhead_mb']:.1f} MB) malloc in use {r['malloc_in_use_mb']:.1f} MB "
              f"held {r['malloc_held_mb']:.1f} MB threads {r['threads']}")
    warm = next((r for r in rows if r["t"] >= 60), rows[0])
    last = rows[-1]
    peak = max(rows, key=lambda r: r["rss_mb"])
    print(f"RSS minute 1 {warm['rss_mb']:.1f} MB -> end {last['rss_mb']:.1f} MB "
          f"({(last['rss_mb'] / warm['rss_mb'] - 1) * 100:+.1f} %), peak {peak['rss_mb']:.1f} MB at t={peak['t']:.0f}s")
    if not trace:
        return
    snaps = sorted(out.glob("snap-*.tm"), key=lambda p: int(p.stem.split("-")[1]))
    if len(snaps) < 2:
        print("fewer than two snapshots")
        return
    filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    first = tracemalloc.Snapshot.load(str(snaps[0])).filter_traces(filters)
    for later in snaps[1:]:
        snap = tracemalloc.Snapshot.load(str(later)).filter_traces(filters)
        total = sum(s.size for s in snap.statistics("filename")) - sum(s.size for s in first.statistics("filename"))
        print(f"tracemalloc {snaps[0].stem} -> {later.stem} (traced total {total / 1e3:+.1f} kB): "
              f"top {top} by size_diff, grouped by traceback")
        for stat in snap.compare_to(first, "traceback")[:top]:
            print(f"  {stat.size_diff / 1e3:+10.1f} kB  {stat.count_diff:+7d} blocks  (now {stat.size / 1e3:.1f} kB)")
            for line in stat.traceback.format(limit=6, most_recent_first=True):
                print("      " + line)


async def dead_letter_rate(n: int) -> None:
    """--dead-letter-rate N: N poison records dead-lettered through build_batch on the real broker (a
    topic of its own, 3 partitions, removed after), one send_and_wait each in 16 KiB producer batches
    (as before issue 17) and then as the projector does now."""
    from aiokafka.admin import NewTopic
    from aiokafka.structs import ConsumerRecord

    from services.projector import metrics
    from services.projector.service import DEAD_LETTER_BATCH_BYTES, build_batch
    from services.shared.deadletter import DeadLetterSink

    configure_logging("ERROR")
    settings = Settings()
    catalog = TopicCatalog.from_settings(settings)
    incidents = catalog.name("incidents")
    records = [ConsumerRecord(topic=incidents, partition=0, offset=i, timestamp=0, timestamp_type=0,
                              key=uuid.uuid4().bytes, value=POISON[i % len(POISON)], checksum=None,
                              serialized_key_size=16, serialized_value_size=len(POISON[i % len(POISON)]), headers=())
               for i in range(n)]
    topic = f"pmem-dl-{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, 1)])
    try:
        for label, options, together in (("one at a time, 16 KiB batches (before)", {}, False),
                                         ("the projector's way now", {"max_batch_size": DEAD_LETTER_BATCH_BYTES}, True)):
            producer = make_producer(settings, **options)
            await producer.start()
            sink = DeadLetterSink(producer, topic, service="projector", counter=metrics.DEAD_LETTERS)

            async def on_poison(record, exc, sink=sink):
                await sink.send(record, exc, "incidents")

            started = time.perf_counter()
            if together:
                await build_batch(records, catalog.carries(), on_poison)
            else:
                for record in records:
                    await build_batch([record], catalog.carries(), on_poison)
            took = time.perf_counter() - started
            print(f"{label}: {n:,} dead letters in {took:.2f} s = {n / took:,.0f}/s")
            await producer.stop()
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def main(args) -> None:
    if args.dead_letter_rate:
        return await dead_letter_rate(args.dead_letter_rate)
    configure_logging("WARNING")
    base = Settings()
    run = uuid.uuid4().hex[:8]
    url = urlsplit(base.database_url.get_secret_value())
    admin_dsn = urlunsplit((url.scheme, url.netloc, "/postgres", "", ""))
    dsn = urlunsplit((url.scheme, url.netloc, f"/muster_pmem_{run}", "", ""))
    settings = base.model_copy(update={
        "topic_prefix": f"pmem-{run}.", "database_url": type(base.database_url)(dsn),
        "projector_consumer_group": f"pmem-{run}.muster-projector", "projector_metrics_port": 0,
    })
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(base)
    await admin.start()
    out = Path(args.out or tempfile.mkdtemp(prefix="pmem-"))
    out.mkdir(parents=True, exist_ok=True)
    proc = None
    try:
        await apply_topics(admin, catalog)
        await asyncio.to_thread(apply_acls, settings, catalog)
        await fresh_database(admin_dsn, dsn)
        seconds = args.minutes * 60
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=_worker, args=(settings.as_principal("projector"), str(out), args.trace,
                                                 [60.0, args.storm_at * 60 + args.storm_seconds + 10, seconds - 10], args.trim),
                                   daemon=True)
        proc.start()
        sent, poison = await feed(settings, catalog.name("incidents"), args.rate, seconds, args.storm_at * 60,
                                  args.storm_rate, args.storm_seconds)
        conn = await asyncpg.connect(dsn)
        applied = await conn.fetchval("select count(*) from incident_events")
        await conn.close()
        print(f"sent {sent:,} valid events at {args.rate}/s and {poison:,} poison records; "
              f"{applied:,} timeline rows stored; output in {out}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.join(30)
        await asyncio.to_thread(remove_acls_under, settings, settings.topic_prefix)
        await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)])
        await admin.close()
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'drop database if exists "muster_pmem_{run}" with (force)')
        await conn.close()
    summarise(out, args.trace, args.top)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=70)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--storm-at", type=float, default=1e9, help="minute the poison storm starts (default: none)")
    parser.add_argument("--storm-rate", type=int, default=2000)
    parser.add_argument("--storm-seconds", type=float, default=30)
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: RSS only)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default=None)
    parser.add_argument("--dead-letter-rate", type=int, default=0, metavar="N",
                        help="only measure the dead-letter rate of N poison records, before and now")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) every 30 s in the projector")
    asyncio.run(main(parser.parse_args()))
