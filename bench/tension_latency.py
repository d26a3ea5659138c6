"""Benchmark: from intake's acknowledgement of the report that crosses a threshold to the
alert on tension.alerts.v1, against the real stack (intake in this process over ASGI, a
`muster run tension` worker in its own process, the running broker and database).

    MUSTER_HOME=... .venv/bin/python bench/tension_latency.py [--wards 20] [--busy-rate 100]

For each of `--wards` wards (no history: the prior's baseline), four hate incidents are
raised, then the fifth, which crosses `elevated`, and the time from its 202 to the alert
for that ward on the topic is measured:

- quiet: before the crossing report the stream is silent for a few seconds (every source
  partition idle, as on a night with a report a minute);
- busy: the same while `--busy-rate` other reports a second (noise, weight 0.25) arrive in
  other wards through intake's batch endpoint.

Prints p50, p99 (with 20 wards: the worst) and max for both. Uses its own topic prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.intake.app import create_app
from services.projector.app import migrate
from services.shared.auth import Role, mint_token
from services.shared.codec import decode, superseded
from services.shared.events import Agency
from services.shared.kafka import apply_topics, make_admin, make_consumer
from services.shared.kafka_security import apply_acls, remove_acls_under
from services.shared.settings import get_settings
from services.shared.topics import TopicCatalog
from services.shared.wards import wards
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]


def report(ward: str, category: str = "hate_incident") -> dict:
    return {"category": category, "severity": 2, "location": {"ward_code": ward},
            "description": "latency bench report", "occurred_at": datetime.now(timezone.utc).isoformat()}


class Alerts:
    """The alerts topic, read as it is written: ward -> the first time an alert for it arrived."""

    def __init__(self, settings, topic: str) -> None:
        self.settings, self.topic, self.seen = settings, topic, {}

    async def run(self, ready: asyncio.Event) -> None:
        consumer = make_consumer(self.settings, self.topic, group_id=None, auto_offset_reset="latest",
                                 fetch_max_wait_ms=20)
        await consumer.start()
        try:
            while not consumer.assignment():
                await asyncio.sleep(0.05)
            await consumer.getmany(timeout_ms=100)
            ready.set()
            while True:
                for records in (await consumer.getmany(timeout_ms=50)).values():
                    now = time.perf_counter()
                    for record in records:
                        if superseded(record.headers):
                            continue
                        alert = decode(record.value)
                        self.seen.setdefault(alert.ward_code, (now, alert))
        finally:
            await consumer.stop()

    async def wait(self, ward: str, timeout: float = 60.0) -> float:
        deadline = time.perf_counter() + timeout
        while ward not in self.seen:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no alert for {ward} within {timeout}s")
            await asyncio.sleep(0.005)
        return self.seen[ward][0]


async def noise(client, headers, codes: list[str], rate: float, stop: asyncio.Event) -> int:
    sent, rng = 0, random.Random(7)
    while not stop.is_set():
        started = time.perf_counter()
        batch = [{**report(rng.choice(codes), "noise"), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4())}
                 for _ in range(max(1, int(rate / 10)))]
        response = await client.post("/v1/events:batch", json={"events": batch}, headers=headers)
        response.raise_for_status()
        sent += len(batch)
        await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))
    return sent


async def measure(client, headers, alerts: Alerts, codes: list[str], *, quiet: bool) -> list[float]:
    out = []
    for ward in codes:
        for _ in range(4):
            (await client.post("/v1/incidents", json=report(ward), headers=headers)).raise_for_status()
        await asyncio.sleep(4.0 if quiet else 0.5)  # quiet: every source partition read to its end and idle
        response = await client.post("/v1/incidents", json=report(ward), headers=headers)
        response.raise_for_status()
        acked = time.perf_counter()
        out.append(await alerts.wait(ward) - acked)
    return out


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]
    return (f"{name:6} n={len(values):3}  p50 {statistics.median(values) * 1000:7.0f} ms  "
            f"p99 {p99 * 1000:7.0f} ms  max {values[-1] * 1000:7.0f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wards", type=int, default=20)
    parser.add_argument("--busy-rate", type=float, default=100.0, help="other reports per second in the busy run")
    args = parser.parse_args()
    base = get_settings()
    prefix = f"{base.topic_prefix}bench-latency-{uuid.uuid4().hex[:6]}."
    settings = base.model_copy(update={"topic_prefix": prefix, "intake_publish_timeout_s": 5.0})
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    try:
        await apply_topics(admin, catalog)
    finally:
        await admin.close()
    await asyncio.to_thread(apply_acls, settings, catalog)  # the worker runs as its own principal
    await migrate(settings)  # as `muster db migrate`: the service roles and intake's schema (intake runs as its role)
    env = {**os.environ, "MUSTER_TOPIC_PREFIX": prefix, "MUSTER_TENSION_METRICS_PORT": str(free_port()),
           "MUSTER_TENSION_INSTANCE_ID": f"bench-{uuid.uuid4().hex[:6]}", "MUSTER_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([str(ROOT / ".venv/bin/muster"), "run", "tension"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    alerts = Alerts(settings, catalog.name("tension.alerts"))
    ready = asyncio.Event()
    reader = asyncio.create_task(alerts.run(ready))
    all_codes = sorted(wards())
    try:
        await asyncio.wait_for(ready.wait(), 30)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30) as client:
                headers = {"Authorization": "Bearer " + mint_token(settings, subject="bench", role=Role.CONTROL_ROOM,
                                                                  agency=Agency.COUNCIL)}
                # warm-up: the worker joins its groups; one ward's alert proves the path works
                warm = all_codes[-1]
                for _ in range(5):
                    (await client.post("/v1/incidents", json=report(warm), headers=headers)).raise_for_status()
                await alerts.wait(warm, timeout=120)
                codes = [c for c in all_codes if c != warm]
                half = max(1, min(args.wards, len(codes)) // 2)
                quiet_codes, busy_codes = codes[:half], codes[half:2 * half]
                quiet = await measure(client, headers, alerts, quiet_codes, quiet=True)
                stop = asyncio.Event()
                background = asyncio.create_task(noise(client, headers, [warm], args.busy_rate, stop))
                await asyncio.sleep(3)
                started = time.perf_counter()
                busy = await measure(client, headers, alerts, busy_codes, quiet=False)
                stop.set()
                sent = await background
                rate = sent / (time.perf_counter() - started + 3)
        print(f"intake ack -> alert on {catalog.name('tension.alerts')} (idle_after 500ms, batch_within 250ms)")
        print(summary("quiet", quiet))
        print(summary("busy", busy) + f"   (background {rate:.0f} reports/s)")
    finally:
        reader.cancel()
        worker.terminate()
        worker.wait(timeout=30)
        await asyncio.to_thread(remove_acls_under, settings, prefix)


if __name__ == "__main__":
    asyncio.run(main())
