"""What the harness samples while a run goes on, from outside the services.

Every `interval` seconds: each service process's resident memory and CPU time (/proc), the
consumer lag of every consumer group on the broker (end offsets minus committed offsets,
Kafka's own numbers) and of the projector (its offsets table in PostgreSQL), and each
service's /metrics (the dead-letter counters, for the alert rules). One JSON line a sample.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from services.chaos.cluster import Cluster

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
KEPT_METRICS = ("_dead_letters_total", "_consumer_lag_records", "_states")


def process_figures(pid: int) -> tuple[float, float] | None:
    """(resident MB, CPU seconds) of one process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    cpu = (int(stat[11]) + int(stat[12])) / TICKS  # utime, stime
    return rss_pages * PAGE / 1e6, cpu


class Monitor:
    def __init__(self, cluster: Cluster, out: Path, interval: float = 2.0) -> None:
        self.cluster, self.out, self.interval = cluster, out, interval
        self._task: asyncio.Task | None = None
        self.samples: list[dict] = []

    async def start(self) -> None:
        self._file = self.out.open("ab")
        self._http = httpx.AsyncClient(timeout=1.5)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Idempotent: the run stops it before auditing, and again on the way out."""
        if self._task is None:
            return
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None
        await self._http.aclose()
        self._file.close()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._kafka is None:
            bootstrap, options = self.cluster.settings.kafka_bootstrap, self.cluster.kafka_options()
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **options)
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=3000, **options)
            try:
                await asyncio.wait_for(admin.start(), 5)
                await asyncio.wait_for(consumer.start(), 5)
            except BaseException:
                await _quietly(admin.close(), consumer.stop())
                raise
            self._kafka = (admin, consumer)
        return self._kafka

    async def _run(self) -> None:
        self._kafka = None
        while True:
            began = time.monotonic()
            try:
                admin, consumer = await self._clients()
                kafka_lag = await asyncio.wait_for(self._kafka_lag(admin, consumer), 5)
                projector_lag = await self._projector_lag(consumer)
            except Exception:  # noqa: BLE001 - the broker may be the fault under way
                kafka_lag = projector_lag = None
                if self._kafka is not None:
                    await _quietly(self._kafka[0].close(), self._kafka[1].stop())
                    self._kafka = None
            sample = {"t": time.time(), "kafka_lag": kafka_lag, "projector_lag": projector_lag,
                      "processes": self._processes(), "metrics": await self._metrics()}
            self.samples.append(sample)
            self._file.write(orjson.dumps(sample) + b"\n")
            self._file.flush()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - began)))

    def _processes(self) -> dict:
        out = {}
        for name, svc in self.cluster.services.items():
            figures = process_figures(svc.proc.pid) if svc.running else None
            out[name] = None if figures is None else {"rss_mb": figures[0], "cpu_s": figures[1], "pid": svc.proc.pid}
        for name, pid in (("kafka", self.cluster.kafka.pid()), ("postgres", self.cluster.postgres.pid())):
            figures = process_figures(pid) if pid else None
            out[name] = None if figures is None else {"rss_mb": figures[0], "cpu_s": figures[1], "pid": pid}
        return out

    async def _kafka_lag(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> dict[str, int]:
        groups = [g[0] for g in await admin.list_consumer_groups()]
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        tps = {tp for c in committed.values() for tp in c}
        if not tps:
            return {}
        ends = await consumer.end_offsets(list(tps))
        return {g: sum(max(0, ends.get(tp, o) - o) for tp, o in c.items()) for g, c in committed.items()}

    async def _projector_lag(self, consumer: AIOKafkaConsumer) -> int | None:
        try:
            conn = await asyncio.wait_for(asyncpg.connect(self.cluster.settings.database_url.get_secret_value()), 2)
        except Exception:  # noqa: BLE001
            return None
        try:
            rows = await conn.fetch("select topic, partition, next_offset from projector_offsets")
        except Exception:  # noqa: BLE001
            return None
        finally:
            await conn.close()
        if not rows:
            return None
        ends = await asyncio.wait_for(consumer.end_offsets([TopicPartition(r["topic"], r["partition"]) for r in rows]), 3)
        return sum(max(0, ends[TopicPartition(r["topic"], r["partition"])] - r["next_offset"]) for r in rows)

    async def _metrics(self) -> dict:
        out: dict[str, dict[str, float]] = {}
        for name, svc in self.cluster.services.items():
            try:
                text = (await self._http.get(f"http://127.0.0.1:{svc.port}/metrics")).text
            except httpx.HTTPError:
                continue
            kept: dict[str, float] = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name.endswith(KEPT_METRICS):
                        kept[s.name] = kept.get(s.name, 0.0) + s.value
            out[name] = kept
        return out


async def _quietly(*closing) -> None:
    for c in closing:
        try:
            await c
        except Exception:  # noqa: BLE001
            pass
