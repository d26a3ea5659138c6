"""Intake benchmark: one intake process (uvicorn subprocess), load from this process on loopback.

Prints, from one run:
  - the raw aiokafka produce rate (acks=all, idempotent) of the same events: the ceiling;
  - sustained single-event requests/s through POST /v1/incidents (target >= 1,500);
  - latency percentiles at a fixed 500 requests/s, open loop (target p99 <= 100 ms);
  - events/s through POST /v1/events:batch (target >= 20,000).

Uses its own topic prefix and database on the local broker and PostgreSQL, removed at the
end; the database is set up as `muster db migrate` does (the service roles, intake's schema),
so a fresh machine needs nothing run first. Every loop is bounded in count and time; only 127.0.0.1 is targeted.

    MUSTER_HOME=/work/main/.muster .venv/bin/python bench/intake.py [--duration 15] [--people 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.projector.app import migrate  # noqa: E402
from services.shared.auth import Role, mint_token  # noqa: E402
from services.shared.codec import encode  # noqa: E402
from services.shared.events import Agency  # noqa: E402
from services.shared.kafka import apply_topics, make_admin, make_producer  # noqa: E402
from services.shared.kafka_security import apply_acls, remove_acls_under  # noqa: E402
from services.shared.settings import Settings  # noqa: E402
from services.shared.topics import TopicCatalog  # noqa: E402
from tests.support import free_port  # noqa: E402

HOST = "127.0.0.1"
REPORT = {
    "category": "antisocial_behaviour",
    "severity": 2,
    "location": {"ward_code": "E05009331", "lat": 51.51, "lon": -0.017},
    "description": "Group shouting outside the shops on the corner",
    "occurred_at": "2026-11-20T21:55:00Z",
}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def setup(settings: Settings) -> TopicCatalog:
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    try:
        await apply_topics(admin, catalog)
    finally:
        await admin.close()
    await asyncio.to_thread(apply_acls, settings, catalog)  # intake runs as its own principal
    url = urlsplit(settings.database_url.get_secret_value())
    conn = await asyncpg.connect(urlunsplit((url.scheme, url.netloc, "/postgres", "", "")))
    try:
        await conn.execute(f'create database "{url.path.lstrip("/")}"')
    finally:
        await conn.close()
    # As `muster db migrate`: the service roles and their schemas (intake's own, the key
    # service), so a fresh machine's database serves intake as its role, muster_intake.
    await migrate(settings)
    return catalog


async def teardown(settings: Settings) -> None:
    await asyncio.to_thread(remove_acls_under, settings, settings.topic_prefix)
    admin = make_admin(settings)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
    url = urlsplit(settings.database_url.get_secret_value())
    conn = await asyncpg.connect(urlunsplit((url.scheme, url.netloc, "/postgres", "", "")))
    try:
        await conn.execute(f'drop database if exists "{url.path.lstrip("/")}" with (force)')
    finally:
        await conn.close()


async def raw_produce_rate(settings: Settings, topic: str, count: int, max_s: float) -> float:
    """The ceiling: the same events straight into aiokafka, acks=all, idempotent."""
    from services.shared.ids import DerivedIds
    from services.intake.validation import new_incident
    from services.shared.auth import Principal
    from services.shared.events import utcnow

    principal = Principal("bench-1", Role.CONTROL_ROOM, Agency.COUNCIL)
    ids = DerivedIds(settings.intake_id_key.get_secret_value())
    encoded = [encode(new_incident(dict(REPORT), principal, now=utcnow(), ids=ids)) for _ in range(min(count, 2000))]
    producer = make_producer(settings)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = []
        for i in range(count):
            e = encoded[i % len(encoded)]
            futures.append(await producer.send(topic, e.value, key=e.key, headers=e.headers))
            if time.perf_counter() - started > max_s:
                break
        await asyncio.wait_for(asyncio.gather(*futures), max_s + 30)
        return len(futures) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def closed_loop(session, url: str, body: bytes, headers: dict, concurrency: int, duration: float, max_requests: int):
    """As many single-event requests as `concurrency` clients can send: throughput."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    sent = 0

    async def client():
        nonlocal sent
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies, statuses


async def open_loop(session, url: str, body: bytes, headers: dict, rate: float, duration: float):
    """Requests at a fixed rate whatever the answers: latency measured from each request's
    scheduled time, so a slow answer cannot hide the requests queued behind it."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(rate * duration)
    start = time.perf_counter() + 0.05

    async def one(scheduled: float):
        async with session.post(url, data=body, headers=headers) as r:
            await r.read()
            statuses[r.status] = statuses.get(r.status, 0) + 1
        latencies.append(time.perf_counter() - scheduled)

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return latencies, statuses


def batch_bodies(size: int, count: int) -> list[bytes]:
    """`count` request bodies of `size` new reports each (fresh incident and event ids), built
    before the clock starts: the load generator shares the machine, so its JSON work must not
    be counted against intake's."""
    bodies = []
    for _ in range(count):
        events = [{**REPORT, "event_type": "IncidentReported", "incident_id": str(uuid.uuid4()),
                   "event_id": str(uuid.uuid4())} for _ in range(size)]
        bodies.append(orjson.dumps({"events": events}))
    return bodies


async def batches(session, url: str, headers: dict, bodies: list[bytes], concurrency: int, duration: float):
    accepted = 0
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    queue = iter(bodies)

    async def client():
        nonlocal accepted
        for body in queue:
            if time.perf_counter() >= deadline:
                break
            async with session.post(url, data=body, headers=headers) as r:
                payload = await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.status == 200:
                    accepted += sum(1 for x in orjson.loads(payload)["results"] if x["status"] == "accepted")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return accepted / (time.perf_counter() - started), statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to report CPU per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def session_for(concurrency: int) -> aiohttp.ClientSession:
    """A fresh connection pool per phase: no phase inherits another's idle keep-alive sockets."""
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"intake exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("intake did not become ready")


async def main(args) -> None:
    run = uuid.uuid4().hex[:8]
    base_settings = Settings()
    url = urlsplit(base_settings.database_url.get_secret_value())
    dsn = urlunsplit((url.scheme, url.netloc, f"/muster_bench_intake_{run}", "", ""))
    port = free_port()
    settings = base_settings.model_copy(
        update={"topic_prefix": f"bench-intake-{run}.", "database_url": type(base_settings.database_url)(dsn), "intake_port": port}
    )
    catalog = await setup(settings)
    env = {
        **os.environ,
        "MUSTER_TOPIC_PREFIX": settings.topic_prefix,
        "MUSTER_DATABASE_URL": dsn,
        "MUSTER_INTAKE_HOST": HOST,
        "MUSTER_INTAKE_PORT": str(port),
        "MUSTER_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "intake"], cwd=ROOT, env=env)
    base = f"http://{HOST}:{port}"
    try:
        wait_ready(base, proc)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"intake pid {proc.pid} on {base}; topic {catalog.name('incidents')}; cpus {os.cpu_count()}; load {load:.2f}")
        if "raw" in args.phases:
            ceiling = await raw_produce_rate(settings.as_principal("intake"), catalog.name("incidents"), args.raw_count,
                                             args.duration)  # with intake's own credentials, as intake sends
            print(f"raw aiokafka produce (acks=all, idempotent), same events: {ceiling:,.0f} msg/s  [ceiling]")

        token = mint_token(settings, subject="bench-1", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps(REPORT).encode()
        single = f"{base}/v1/incidents"
        if "single" in args.phases:
            async with session_for(args.concurrency) as session:
                await closed_loop(session, single, body, headers, 16, 2, 2000)  # warm up
                cpu0 = cpu_seconds(proc.pid)
                rps, lat, statuses = await closed_loop(
                    session, single, body, headers, args.concurrency, args.duration, args.duration * 10_000
                )
                cpu_ms = (cpu_seconds(proc.pid) - cpu0) * 1000 / max(1, len(lat))
            print(
                f"single-event sustained: {rps:,.0f} req/s at concurrency {args.concurrency} for {args.duration}s "
                f"(p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
                f"intake CPU {cpu_ms:.2f} ms/request) statuses {statuses}  [target >= 1,500 req/s]"
            )
        if "latency" in args.phases:
            async with session_for(args.concurrency) as session:
                await closed_loop(session, single, body, headers, 16, 1, 1000)  # warm up
                lat, statuses = await open_loop(session, single, body, headers, args.rate, args.duration)
            print(
                f"latency at {args.rate:.0f} req/s open loop for {args.duration}s: p50 {percentile(lat, 50) * 1000:.1f} ms, "
                f"p95 {percentile(lat, 95) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
                f"max {max(lat) * 1000:.1f} ms, statuses {statuses}  [target p99 <= 100 ms]"
            )
        if "batch" in args.phases:
            bodies = batch_bodies(args.batch_size, min(2_000, -(-args.duration * 40_000 // args.batch_size)))
            async with session_for(args.batch_concurrency) as session:
                cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                eps, statuses = await batches(
                    session, f"{base}/v1/events:batch", headers, bodies, args.batch_concurrency, args.duration
                )
                cpu_us = (cpu_seconds(proc.pid) - cpu0) * 1e6 / max(1.0, eps * (time.perf_counter() - t0))
            print(
                f"batch endpoint: {eps:,.0f} events/s ({args.batch_size} per batch, {args.batch_concurrency} in flight, "
                f"intake CPU {cpu_us:.0f} us/event) statuses {statuses}  [target >= 20,000 events/s]"
            )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        await teardown(settings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per phase (bounded)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-concurrency", type=int, default=3)
    parser.add_argument("--raw-count", type=int, default=100_000)
    parser.add_argument("--phases", default="raw,single,latency,batch", help="comma-separated subset")
    parser.add_argument("--people", type=int, default=0,
                        help="people named in each report (intake seals them: what sealing costs)")
    args = parser.parse_args()
    if args.people:
        REPORT["people"] = [{"role": "victim", "name": f"Bench Person {i}", "age": 30 + i, "description": "bench"}
                            for i in range(min(args.people, 20))]
    args.duration = max(1, min(args.duration, 120))
    import uvloop

    uvloop.run(main(args))  # the faster loop for the load generator too
