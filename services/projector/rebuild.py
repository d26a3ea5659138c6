"""`muster projector rebuild`: the store again from the start of the topics, swapped in at once.

1. apply the migrations into a fresh shadow schema;
2. read every source partition from its beginning to its current end into the shadow
   tables, with the same batch code the live projector uses (offsets under the live group);
3. in one transaction holding the swap lock (which every live batch holds shared, so the
   live projector waits between batches): read the live offsets, catch the shadow up to
   them, move the live tables out and the shadow tables in.

Everything is keyed by event_id, so the shadow reading further than the live projector is
harmless: the live projector re-reads those records and finds them already applied.
Poison records are skipped, not dead-lettered again (the live projector did that).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition
from tqdm import tqdm

from services.projector import repository, schema
from services.projector.repository import connect
from services.projector.service import build_batch, source_topics
from services.shared.kafka import make_consumer, topic_partitions
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog

SHADOW = "projector_rebuild"
RETIRED = "projector_retired"


@dataclass
class RebuildResult:
    records: int
    facts: int
    partitions: int


class _Reader:
    """Reads assigned partitions up to target offsets and writes them into the shadow schema."""

    def __init__(self, consumer, writer: asyncpg.Connection, group: str, batch_max: int, bar: tqdm,
                 carries: dict[str, frozenset[str]]) -> None:
        self.consumer, self.writer, self.group, self.batch_max, self.bar = consumer, writer, group, batch_max, bar
        self.carries = carries
        self.records = 0
        self.facts = 0

    async def read_until(self, targets: dict[TopicPartition, int]) -> None:
        pending = {tp for tp, end in targets.items() if await self.consumer.position(tp) < end}
        while pending:
            fetched = await self.consumer.getmany(*pending, timeout_ms=500, max_records=self.batch_max)
            records = [r for rs in fetched.values() for r in rs]
            if records:
                batch = await build_batch(records, self.carries)
                written = await repository.write_batch(self.writer, batch, self.group, swap_lock=False)
                self.records += len(records)
                self.facts += sum(written.applied.values())
                self.bar.update(len(records))
            pending = {tp for tp in pending if await self.consumer.position(tp) < targets[tp]}


async def rebuild(settings: Settings, *, progress: bool = True) -> RebuildResult:
    dsn = settings.database_url.get_secret_value()
    catalog = TopicCatalog.from_settings(settings)
    topics = source_topics(catalog)
    group = settings.projector_consumer_group
    admin = await asyncpg.connect(dsn, timeout=10)
    await schema.migrate(admin)  # the live schema exists (and is current) before anything moves
    await admin.execute(f"drop schema if exists {SHADOW} cascade")
    await schema.migrate(admin, SHADOW)
    writer = await connect(dsn, search_path=SHADOW)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(settings, topics)
        consumer.assign(tps)
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        with tqdm(total=sum(end[tp] - begin[tp] for tp in tps), unit="rec", desc="rebuild", disable=not progress) as bar:
            reader = _Reader(consumer, writer, group, settings.projector_batch_max_records, bar, catalog.carries())
            await reader.read_until(end)
            async with admin.transaction():
                await admin.execute("select pg_advisory_xact_lock($1)", repository.SWAP_LOCK)
                live = await repository.stored_offsets(admin, group, topics)
                await reader.read_until({TopicPartition(t, p): o for (t, p), o in live.items()})
                await _swap(admin, group)
        await admin.execute(f"drop schema if exists {RETIRED} cascade; drop schema if exists {SHADOW} cascade")
        return RebuildResult(records=reader.records, facts=reader.facts, partitions=len(tps))
    finally:
        await consumer.stop()
        await writer.close()
        await admin.close()


async def _swap(admin: asyncpg.Connection, group: str) -> None:
    """Inside the caller's transaction: the shadow tables become the live ones."""
    await admin.execute(
        f"insert into {SHADOW}.projector_offsets select * from public.projector_offsets "
        "where consumer_group <> $1 on conflict do nothing",
        group,
    )
    await admin.execute(f"drop schema if exists {RETIRED} cascade; create schema {RETIRED}")
    for table in schema.TABLES:
        await admin.execute(f"alter table public.{table} set schema {RETIRED}")
    for table in schema.TABLES:
        await admin.execute(f"alter table {SHADOW}.{table} set schema public")
