"""What one escalation worker holds before and after a restart: table entries, changelog
records and RSS, live, after a kill -9 and after a clean restart (issue 17, item 3).

    flock /tmp/muster-heavy.lock .venv/bin/python bench/escalation_recovery.py [--events 40000] [--rate 400] [--retention 20]

(with MUSTER_HOME and MUSTER_CACHE_DIR exported). Under a fresh topic prefix (deleted
afterwards) it runs `muster run escalation` as a subprocess with a short
MUSTER_ESCALATION_CLOSED_RETENTION_SECONDS, feeds `--events` simulator events (incidents
that live and finish) at `--rate`, waits past the retention until the finished incidents are
released, then kills the worker (-9), starts it again, stops it cleanly (SIGTERM), starts it
again. At each point it prints the worker's table (`muster_escalation_states`, and the
entries recovered, from the worker's `escalation.deadlines_indexed` line), its RSS and peak
RSS, and for each changelog the records a recovery reads and the keys it keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from aiokafka import TopicPartition

from services.shared.kafka import apply_topics, make_admin, make_consumer
from services.shared.kafka_security import apply_acls, remove_acls_under
from services.shared.settings import REPO_ROOT, Settings
from services.shared.topics import TopicCatalog
from services.simulator.app import Options, simulate
from services.simulator.feed import Pace
from services.simulator.generator import FeedConfig, generate

CHANGELOGS = ("incident-state", "corroboration-windows")


class Worker:
    def __init__(self, settings: Settings, log: Path, retention: float, app_id: str) -> None:
        self.settings, self.log, self.retention, self.app_id = settings, log, retention, app_id
        self.port = 19000 + random.randint(0, 900)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "MUSTER_TOPIC_PREFIX": self.settings.topic_prefix,
               "MUSTER_ESCALATION_METRICS_PORT": str(self.port), "MUSTER_ESCALATION_APP_ID": self.app_id,
               "MUSTER_ESCALATION_CLOSED_RETENTION_SECONDS": str(self.retention),
               "MUSTER_ESCALATION_TICK_SECONDS": "0.5", "MUSTER_LOG_FORMAT": "json", "MUSTER_LOG_LEVEL": "INFO"}
        self.proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "escalation"], env=env,
                                     cwd=REPO_ROOT, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started = time.monotonic()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(60)

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the worker process, MB."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value
        return tuple(int(fields[f].split()[0]) / 1024 for f in ("VmRSS", "VmHWM"))  # type: ignore[return-value]

    async def metric(self, name: str, labels: str = "") -> float:
        async with httpx.AsyncClient() as client:
            try:
                text = (await client.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2)).text
            except httpx.HTTPError:
                return -1.0
        for line in text.splitlines():
            if line.startswith(name + labels + " "):
                return float(line.split()[-1])
        return 0.0

    async def ready(self) -> bool:
        assert self.proc.poll() is None, f"worker exited; see {self.log}"
        async with httpx.AsyncClient() as client:
            try:
                return (await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False

    def indexed(self) -> list[dict]:
        """The worker's `escalation.deadlines_indexed` lines (one per table rebuild), oldest first."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if '"escalation.deadlines_indexed"' in line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(interval)


async def changelog_stats(settings: Settings, topic: str, partitions: int) -> dict:
    """What a recovery reads from a changelog (records, bytes) and what it keeps (keys, bytes)."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        records = tombstones = size = 0
        latest: dict[bytes, int] = {}
        left = {tp for tp in tps if ends[tp] > starts[tp]}
        while left:
            for tp, batch in (await consumer.getmany(*left, timeout_ms=500, max_records=5000)).items():
                for r in batch:
                    records += 1
                    size += len(r.value or b"")
                    if r.value is None:
                        tombstones += 1
                        latest.pop(r.key, None)
                    else:
                        latest[r.key] = len(r.value)
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        return {"records": records, "tombstones": tombstones, "mb": size / 1e6, "keys": len(latest),
                "kept_mb": sum(latest.values()) / 1e6, "start_offsets": sum(starts.values())}
    finally:
        await consumer.stop()


async def main(args: argparse.Namespace) -> None:
    base = Settings()
    settings = base.model_copy(update={"topic_prefix": f"bench-{uuid.uuid4().hex[:6]}."})
    catalog = TopicCatalog.from_settings(settings)
    partitions = catalog.spec_of("incidents").partitions
    app_id = "muster-escalation"
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog)
    await asyncio.to_thread(apply_acls, settings, catalog)
    log = Path(args.log)
    log.write_text("")
    worker = Worker(settings, log, args.retention, app_id)
    rows: list[tuple[str, dict]] = []

    async def snapshot(point: str) -> None:
        rss, hwm = worker.rss_mb()
        row = {"states": await worker.metric("muster_escalation_states"),
               "released": await worker.metric("muster_escalation_released_total"), "rss": rss, "hwm": hwm}
        for name in CHANGELOGS:
            row[name] = await changelog_stats(settings, f"{settings.topic_prefix}{app_id}-{name}-changelog",
                                              partitions)
        rows.append((point, row))
        print(point, json.dumps(row), flush=True)

    async def settled() -> None:
        """Past the retention, the finished incidents released: the table stops shrinking."""
        await asyncio.sleep(args.retention + 2)
        last = -2.0
        while (now := await worker.metric("muster_escalation_states")) != last:
            last = now
            await asyncio.sleep(3)

    async def restart(point: str, sig: int) -> None:
        before = len(worker.indexed())
        worker.signal(sig)
        worker.start()
        await until(worker.ready, 300, f"{point}: /readyz")
        ready_s = time.monotonic() - worker.started
        await until(lambda: asyncio.sleep(0, len(worker.indexed()) > before), 60, f"{point}: the table rebuilt")
        rebuilt = worker.indexed()[-1]
        rss, hwm = worker.rss_mb()
        print(f"{point}: ready in {ready_s:.1f}s, recovered {rebuilt.get('states')} states "
              f"({rebuilt.get('releasing')} to release), RSS {rss:.0f} MB, peak {hwm:.0f} MB", flush=True)
        rows.append((f"{point} (recovered)", {"states": rebuilt.get("states"), "rss": rss, "hwm": hwm,
                                              "ready_s": ready_s}))
        await settled()
        await snapshot(f"{point} (settled)")

    try:
        worker.start()
        await until(worker.ready, 120, "first start: /readyz")
        start = datetime.now(timezone.utc) - timedelta(hours=args.hours)
        feed = FeedConfig(start=start, hours=args.hours, intensity=args.intensity, seed=args.seed)
        events = itertools.islice(generate(feed), args.events)
        if not args.simulated_time:
            events = _now(events)
        report = await simulate(settings.as_principal("simulator"), Options(
            feed=feed, pace=Pace(rate=args.rate), events=args.events, progress=False), events)
        sent = report.played.sent
        print("\n".join(report.lines()), flush=True)
        await until(lambda: _at_least(worker, sent), 600, "every event processed")
        await settled()
        await snapshot("live")
        await restart("kill -9 + start", signal.SIGKILL)
        await restart("SIGTERM + start", signal.SIGTERM)
    finally:
        if worker.proc and worker.proc.poll() is None:
            worker.signal(signal.SIGTERM)
        await asyncio.to_thread(remove_acls_under, settings, settings.topic_prefix)
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
        await admin.close()
    print()
    print(f"{'point':34} {'states':>7} {'RSS MB':>7} {'peak MB':>8}  changelog records read (keys kept)")
    for point, row in rows:
        logs = "  ".join(f"{n}: {row[n]['records']:,} ({row[n]['keys']:,}), {row[n]['mb']:.1f} MB"
                         for n in CHANGELOGS if n in row)
        print(f"{point:34} {row['states'] or 0:>7.0f} {row['rss']:>7.0f} {row['hwm']:>8.0f}  {logs}")


def _now(events):
    """Each event as happening now (as the chaos driver sends them: intake stamps its time), so
    reports of one kind crowd the corroboration windows as in the soak."""
    for event in events:
        now = datetime.now(timezone.utc)
        yield event.model_copy(update={"occurred_at": now, "recorded_at": now})


async def _at_least(worker: Worker, sent: int) -> bool:
    return await worker.metric("muster_escalation_events_total", '{input="incidents"}') >= sent


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--retention", type=float, default=20)
    parser.add_argument("--hours", type=float, default=24 * 30, help="simulated period the events come from")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--simulated-time", action="store_true",
                        help="keep the simulator's event times (default: each event happens as it is sent)")
    parser.add_argument("--log", default="/tmp/bench-escalation-recovery.log")
    asyncio.run(main(parser.parse_args()))
