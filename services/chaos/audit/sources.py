"""What the auditor reads: whole topics from the broker, tables from the status store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

# The status store's tables and their keys (docs/projector.md).
STORE_TABLES = {
    "incidents": ("incident_id",),
    "incident_events": ("event_id",),
    "escalations": ("incident_id", "level"),
    "ward_tension": ("ward_code", "mode"),
    "ward_tension_history": ("event_id",),
}


@dataclass(frozen=True, slots=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # seconds (the broker's record timestamp)
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace") if value is not None else None
        return None


async def read_topics(bootstrap: str, topics: dict[str, int], **options) -> dict[str, list[Rec]]:
    """Every record of each topic (name -> partitions), from the start to the end offsets of now.
    `options`: aiokafka's connection options (security_protocol, sasl_mechanism, ...) for a secured broker."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                fetch_max_bytes=32 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024,
                                **options)
    await consumer.start()
    out: dict[str, list[Rec]] = {t: [] for t in topics}
    try:
        existing = await consumer.topics()
        tps = [TopicPartition(t, p) for t, n in topics.items() if t in existing for p in range(n)]
        if not tps:
            return out
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        while left:
            batch = await consumer.getmany(*left, timeout_ms=1000, max_records=20000)
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset < ends[tp]:
                        out[tp.topic].append(Rec(tp.topic, tp.partition, m.offset, m.key, m.value, m.timestamp / 1000,
                                                 tuple(m.headers or ())))
                if messages and messages[-1].offset >= ends[tp] - 1:
                    left.discard(tp)
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    return out


async def snapshot(database_url: str, timeout: float = 60.0) -> dict[str, list[dict]]:
    """Every row of the status store's tables, sorted by key (for comparing two snapshots)."""
    conn = await asyncio.wait_for(asyncpg.connect(database_url), timeout)
    try:
        out = {}
        for table, key in STORE_TABLES.items():
            order = ", ".join(f'"{k}"' for k in key)
            rows = await conn.fetch(f'select * from "{table}" order by {order}')
            out[table] = [dict(r) for r in rows]
        return out
    finally:
        await conn.close()


async def run_replay(command: tuple[str, ...], env: dict[str, str], cwd: str, timeout: float = 600.0
                     ) -> list[bytes] | str:
    """The lines a separate process prints (a service's own offline replay, run as a command: the
    auditor imports no service code), or why there are none."""
    try:
        proc = await asyncio.create_subprocess_exec(*command, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        return f"{' '.join(command)} did not start: {exc}"
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return f"{' '.join(command)} took longer than {timeout:.0f}s"
    if proc.returncode != 0:
        return f"{' '.join(command)} exited with {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}"
    return [line for line in out.splitlines() if line.strip()]
