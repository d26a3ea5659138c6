"""Query service benchmark (issue 8).

    MUSTER_HOME=/work/main/.muster .venv/bin/python bench/query.py [--incidents 1000000] [--requests 2000]

1. Loads N incidents and their timelines (1-3 facts each) into a bench database of its own
   (muster_bench_query) with COPY, not through Kafka; reused when it already holds N.
2. Starts one query process (`muster run query`) and measures, from a client on the same
   machine, p50/p95/p99 of a filtered first page and of one incident with its timeline.
   Baselines measured in the same run: GET /healthz (the HTTP floor) and the same SQL on a
   direct connection (the database floor).
3. Starts intake and a projector (own topic prefix, the local broker) and measures how long
   after intake's 202 (the broker's acknowledgement) a connected /v1/stream reader receives
   the new incident. Target: p99 <= 20 ms for both reads; stream within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.projector import schema  # noqa: E402
from services.projector.handlers import TIMELINE_COLUMNS  # noqa: E402
from services.shared.auth import Role, mint_token  # noqa: E402
from services.shared.events import SENSITIVE_CATEGORIES, Agency, Category  # noqa: E402
from services.shared.kafka import apply_topics, make_admin  # noqa: E402
from services.shared.kafka_security import apply_acls, remove_acls_under  # noqa: E402
from services.shared.settings import Settings  # noqa: E402
from services.shared.topics import TopicCatalog  # noqa: E402
from services.shared.wards import load_wards  # noqa: E402
from tests.support import free_port  # noqa: E402

BENCH_DB = "muster_bench_query"
CHUNK = 50_000
INCIDENT_COLUMNS = (
    "incident_id", "reported", "category", "severity", "status", "status_rank", "status_at", "ward_code",
    "description", "agencies_required", "classification", "mode", "reported_at", "occurred_at", "acknowledged_at",
    "last_event_at", "updated_at", "version", "source_kind", "source_id", "source_agency",
)
STATUSES = [("closed", 6)] * 14 + [("resolved", 5)] * 3 + [("acknowledged", 1), ("open", 0), ("dispatched", 2)]
CATEGORIES = [c.value for c in Category]


def bench_dsn(settings: Settings) -> str:
    url = urlsplit(settings.database_url.get_secret_value())
    return urlunsplit((url.scheme, url.netloc, f"/{BENCH_DB}", url.query, url.fragment))


def _rows(start: int, count: int, wards: list[str], now: datetime, rng: random.Random):
    incidents, events = [], []
    for n in range(start, start + count):
        iid = uuid.UUID(int=rng.getrandbits(128))
        category = rng.choice(CATEGORIES)
        cls = "OFFICIAL-SENSITIVE" if Category(category) in SENSITIVE_CATEGORIES else "OFFICIAL"
        at = now - timedelta(seconds=rng.randrange(365 * 86400))
        status, rank = rng.choice(STATUSES)
        ward = rng.choice(wards)  # independent draws: no accidental correlation between filters
        agency = rng.choice(("council", "police", "fire", "ambulance", "housing"))
        facts = rng.randint(1, 3)
        incidents.append((
            iid, True, category, rng.randint(1, 5), status, rank, at + timedelta(minutes=facts), ward,
            f"bench incident {n}", [agency], cls, "live", at + timedelta(seconds=2), at,
            at + timedelta(minutes=1) if rank else None, at + timedelta(minutes=facts), at + timedelta(minutes=facts),
            facts, "control_room", "bench", agency,
        ))
        for k in range(facts):
            kind = ("IncidentReported", "IncidentAcknowledged", "IncidentStatusChanged")[k]
            ev_at = at + timedelta(minutes=k)
            payload = json.dumps({"event_type": kind, "incident_id": str(iid), "occurred_at": ev_at.isoformat(),
                                  "description": f"bench {n}" if k == 0 else None})
            events.append((uuid.UUID(int=rng.getrandbits(128)), iid, kind, ev_at, ev_at, cls, "live", "control_room",
                           "bench", agency, payload, "bench", 0, n * 3 + k))
    return incidents, events


async def load(settings: Settings, n: int, reload: bool = False) -> float:
    """Create, migrate and fill the bench database unless it already holds n incidents. Seconds taken."""
    dsn = bench_dsn(settings)
    admin = await asyncpg.connect(settings.database_url.get_secret_value().rsplit("/", 1)[0] + "/postgres")
    try:
        exists = await admin.fetchval("select 1 from pg_database where datname = $1", BENCH_DB)
        if exists:
            conn = await asyncpg.connect(dsn)
            try:
                have = await conn.fetchval("select count(*) from incidents where source_id = 'bench'")  # not the stream's
            except asyncpg.UndefinedTableError:
                have = -1
            await conn.close()
            if have == n and not reload:
                print(f"reusing {BENCH_DB} with {n:,} incidents")
                return 0.0
            await admin.execute(f'drop database "{BENCH_DB}" with (force)')
        await admin.execute(f'create database "{BENCH_DB}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        await schema.migrate(conn)
        await conn.execute("set session_replication_role = replica")  # no change notifications while loading
        wards = sorted(load_wards(settings.wards_file))
        rng = random.Random(8)
        now = datetime.now(timezone.utc)
        done = 0
        while done < n:
            count = min(CHUNK, n - done)
            incidents, events = _rows(done, count, wards, now, rng)
            await conn.copy_records_to_table("incidents", records=incidents, columns=INCIDENT_COLUMNS)
            await conn.copy_records_to_table("incident_events", records=events, columns=TIMELINE_COLUMNS)
            done += count
            print(f"\rloaded {done:,} incidents", end="", flush=True)
        print()
        await conn.execute("analyze")
    finally:
        await conn.close()
    return time.perf_counter() - started


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1000


def summary(name: str, samples: list[float]) -> str:
    return (f"{name:<38} n={len(samples):>5}  p50={pct(samples, 50):7.2f} ms  p95={pct(samples, 95):7.2f} ms  "
            f"p99={pct(samples, 99):7.2f} ms  max={max(samples) * 1000:7.2f} ms")


def start(service: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.cli", "run", service], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as c:
        while True:
            try:
                if (await c.get(f"{url}/readyz", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} not ready in {timeout}s")
            await asyncio.sleep(0.2)


async def timed(client: httpx.AsyncClient, paths: list[str], headers: dict) -> list[float]:
    out = []
    for path in paths:
        t = time.perf_counter()
        r = await client.get(path, headers=headers)
        out.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise SystemExit(f"{path}: {r.status_code} {r.text[:200]}")
    return out


async def reads(settings: Settings, url: str, requests: int) -> None:
    dsn = bench_dsn(settings)
    wards = sorted(load_wards(settings.wards_file))
    conn = await asyncpg.connect(dsn)
    ids = [r[0] for r in await conn.fetch(
        "select incident_id from incidents tablesample system (1) where classification = 'OFFICIAL' limit $1", requests)]
    await conn.close()
    rng = random.Random(1)
    headers = {"Authorization": f"Bearer {mint_token(settings, subject='bench', role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)}"}
    first_pages = [f"/v1/incidents?ward={rng.choice(wards)}&status=open&status=acknowledged&severity_min=2&limit=50"
                   for _ in range(requests)]
    category_pages = [f"/v1/incidents?category={rng.choice(CATEGORIES)}&mode=live&limit=50" for _ in range(requests)]
    details = [f"/v1/incidents/{rng.choice(ids)}" for _ in range(requests)]
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await timed(client, first_pages[:200] + details[:200] + ["/healthz"] * 100, headers)  # warm-up
        health = await timed(client, ["/healthz"] * requests, {})
        pages = await timed(client, first_pages, headers)
        cats = await timed(client, category_pages, headers)
        one = await timed(client, details, headers)
    # the database floor: the same first-page SQL on a direct connection as the query role, in its scope
    from services.query.app import query_dsn
    from services.query.queries import INCIDENT_COLUMNS as COLS

    qconn = await asyncpg.connect(query_dsn(settings.model_copy(update={"database_url": type(settings.database_url)(dsn)})),
                                  server_settings={"plan_cache_mode": "force_custom_plan"})
    sql = (f"select {COLS} from incidents where ward_code = $1 and status = any($2::text[]) "
           "and severity >= $3 order by occurred_at desc, incident_id desc limit 51")
    floor = []
    for _ in range(requests):
        t = time.perf_counter()
        async with qconn.transaction():
            await qconn.execute("select set_config('muster.role','control_room',true), set_config('muster.agency','council',true)")
            await qconn.fetch(sql, rng.choice(wards), ["open", "acknowledged"], 2)
        floor.append(time.perf_counter() - t)
    await qconn.close()
    print(summary("baseline GET /healthz", health))
    print(summary("baseline first-page SQL, direct", floor))
    print(summary("filtered first page (ward+status+sev)", pages))
    print(summary("filtered first page (category)", cats))
    print(summary("one incident with its timeline", one))
    for name, s in (("filtered first page", pages + cats), ("one incident", one)):
        print(f"  {name}: p99 {pct(s, 99):.2f} ms -> {'PASS' if pct(s, 99) <= 20 else 'FAIL'} (target <= 20 ms)")


async def stream_latency(settings: Settings, url: str, intake_url: str, samples: int) -> None:
    token = mint_token(settings, subject="bench", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)
    headers = {"Authorization": f"Bearer {token}"}
    arrived: dict[str, float] = {}
    ready = asyncio.Event()

    async def listen():
        async with httpx.AsyncClient(base_url=url, timeout=None) as c:
            async with c.stream("GET", "/v1/stream", headers=headers) as r:
                kind = None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                        ready.set() if kind == "ready" else None
                    elif line.startswith("data:") and kind == "incident":
                        arrived.setdefault(json.loads(line[5:])["incident_id"], time.perf_counter())

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)
    lat = []
    async with httpx.AsyncClient(base_url=intake_url, timeout=10) as c:
        for i in range(samples + 3):
            body = {"occurred_at": datetime.now(timezone.utc).isoformat(), "category": "noise", "severity": 2,
                    "location": {"ward_code": sorted(load_wards(settings.wards_file))[0]}, "description": f"bench {i}"}
            r = await c.post("/v1/incidents", json=body, headers=headers)
            acked = time.perf_counter()
            if r.status_code != 202:
                raise SystemExit(f"intake: {r.status_code} {r.text[:200]}")
            iid = r.json()["incident_id"]
            deadline = acked + 5
            while iid not in arrived and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            if i >= 3:  # the first few include the projector joining its group
                lat.append(arrived.get(iid, float("inf")) - acked)
    task.cancel()
    print(summary("stream: intake 202 -> SSE at reader", lat))
    print(f"  stream: max {max(lat) * 1000:.0f} ms -> {'PASS' if max(lat) <= 1.0 else 'FAIL'} (target <= 1 s)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--stream-samples", type=int, default=30)
    parser.add_argument("--reload", action="store_true", help="Load the bench database again even if it is full.")
    args = parser.parse_args()
    settings = Settings()
    print("command:", " ".join([os.path.relpath(sys.executable, ROOT), "bench/query.py", *sys.argv[1:]]))
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    took = await load(settings, args.incidents, args.reload)
    if took:
        print(f"load: {args.incidents:,} incidents with timelines by COPY in {took:.1f} s")
    dsn = bench_dsn(settings)
    prefix = f"bench-query-{uuid.uuid4().hex[:6]}."
    qport, iport = free_port(), free_port()
    env = {**os.environ, "MUSTER_DATABASE_URL": dsn, "MUSTER_QUERY_PORT": str(qport), "MUSTER_INTAKE_PORT": str(iport),
           "MUSTER_TOPIC_PREFIX": prefix, "MUSTER_PROJECTOR_METRICS_PORT": "0",
           "MUSTER_PROJECTOR_CONSUMER_GROUP": f"{prefix}muster-projector-bench", "MUSTER_LOG_LEVEL": "WARNING"}
    bench_settings = settings.model_copy(update={"topic_prefix": prefix})
    catalog = TopicCatalog.from_settings(bench_settings)
    admin = make_admin(bench_settings)
    await admin.start()
    await apply_topics(admin, catalog)
    await asyncio.to_thread(apply_acls, bench_settings, catalog)  # intake and the projector run as their principals
    procs = [start("query", env)]
    try:
        url = f"http://127.0.0.1:{qport}"
        await wait_ready(url)
        await reads(settings, url, args.requests)
        procs += [start("intake", env), start("projector", env)]
        await wait_ready(f"http://127.0.0.1:{iport}")
        await stream_latency(settings, url, f"http://127.0.0.1:{iport}", args.stream_samples)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
        await asyncio.to_thread(remove_acls_under, bench_settings, prefix)
        await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(prefix)])
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
