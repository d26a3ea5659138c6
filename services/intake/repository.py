"""The idempotency store: which event_ids intake has published, and where they landed.

A table in PostgreSQL's `intake` schema, written after the broker acknowledged and before
the client hears 202, so the same event_id sent again, also after a restart, returns the
original result. Single requests are coalesced into bulk statements (MicroBatcher).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg

from services.intake.batcher import MicroBatcher

DDL = """
create schema if not exists intake;
create table if not exists intake.accepted_events (
    event_id    uuid primary key,
    incident_id uuid not null,
    event_type  text not null,
    topic       text not null,
    partition   integer not null,
    "offset"    bigint not null,
    accepted_at timestamptz not null default now()
);
"""

LOOKUP = """
select event_id, incident_id, event_type, topic, partition, "offset"
from intake.accepted_events where event_id = any($1::uuid[])
"""

RECORD = """
insert into intake.accepted_events (event_id, incident_id, event_type, topic, partition, "offset")
select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::integer[], $6::bigint[])
on conflict (event_id) do nothing
"""


@dataclass(frozen=True, slots=True)
class Accepted:
    """Where the broker put an event: the result intake returns, now and on every retry."""

    event_id: uuid.UUID
    incident_id: uuid.UUID
    event_type: str
    topic: str
    partition: int
    offset: int


class StoreUnavailable(RuntimeError):
    pass


class IdempotencyStore:
    def __init__(self, dsn: str, timeout_s: float) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._lookups: MicroBatcher[uuid.UUID, Accepted | None] = MicroBatcher(self._lookup_bulk)
        self._records: MicroBatcher[Accepted, None] = MicroBatcher(self._record_bulk)

    async def start(self) -> None:
        try:
            await self._ensure_pool()
        except StoreUnavailable:
            pass  # retried on first use; /readyz says so meanwhile

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> bool:
        try:
            pool = await self._ensure_pool()
            await pool.fetchval("select 1", timeout=self._timeout_s)
            return True
        except (StoreUnavailable, OSError, asyncpg.PostgresError, asyncio.TimeoutError):
            return False

    async def lookup(self, event_id: uuid.UUID) -> Accepted | None:
        return await self._lookups.submit(event_id)

    async def lookup_many(self, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, Accepted]:
        found = await self._lookup_bulk(event_ids)
        return {a.event_id: a for a in found if a is not None}

    async def record(self, accepted: Accepted) -> None:
        await self._records.submit(accepted)

    async def record_many(self, accepted: list[Accepted]) -> None:
        if accepted:
            await self._record_bulk(accepted)

    async def _lookup_bulk(self, event_ids: list[uuid.UUID]) -> list[Accepted | None]:
        pool = await self._ensure_pool()
        try:
            rows = await pool.fetch(LOOKUP, event_ids, timeout=self._timeout_s)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        found = {row["event_id"]: Accepted(**dict(row)) for row in rows}
        return [found.get(event_id) for event_id in event_ids]

    async def _record_bulk(self, accepted: list[Accepted]) -> list[None]:
        pool = await self._ensure_pool()
        columns = list(zip(*((a.event_id, a.incident_id, a.event_type, a.topic, a.partition, a.offset) for a in accepted)))
        try:
            await pool.execute(RECORD, *columns, timeout=self._timeout_s)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        return [None] * len(accepted)

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4, timeout=self._timeout_s)
                    await pool.execute(DDL, timeout=self._timeout_s)
                except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                    raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
                self._pool = pool
        return self._pool
