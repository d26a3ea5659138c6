"""The idempotency store: which event_ids intake has published, and where they landed.

A table in PostgreSQL's `intake` schema, written after the broker acknowledged and before
the client hears 202, so the same event_id sent again, also after a restart, returns the
original result. Single requests are coalesced into bulk statements (MicroBatcher).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import NamedTuple

import asyncpg
import orjson

from services.intake.batcher import MicroBatcher
from services.intake.registry import Change, IncidentRecord
from services.shared import keys, migrations
from services.shared.logging import get_logger

log = get_logger("intake.repository")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA = "intake"  # intake's tables live in a schema of their own
# The schema `intake` is made, owned by muster_intake, by `muster db migrate` (roles.sql): the
# role may not create schemas, only tables in its own (the migration runner creates none that exists).

LOOKUP = """
select event_id, incident_id, event_type, topic, partition, "offset", subject, digest
from intake.accepted_events where event_id = any($1::uuid[])
"""

# The bulk writes take their rows as one JSON document (json_to_recordset): asyncpg encodes a
# thousand-element array parameter element by element, which cost intake more CPU per batch
# than the rest of the write (17 arrays for a batch of reports); orjson writes the document in
# a fraction of that.
RECORD = """
insert into intake.accepted_events (event_id, incident_id, event_type, topic, partition, "offset", subject, digest)
select r.e, r.i, r.t, r.topic, r.p, r.o, r.s, decode(r.d, 'hex')
from json_to_recordset($1::json) as r(e uuid, i uuid, t text, topic text, p integer, o bigint, s text, d text)
on conflict (event_id) do nothing
"""

INCIDENTS = """
select incident_id, reporter, reporting_agency, source_kind, source_id, agencies_required, mode, classification,
       terminal, lead_incident_id
from intake.incidents where incident_id = any($1::uuid[])
"""

REGISTER = """
insert into intake.incidents (incident_id, reporter, reporting_agency, source_kind, source_id, agencies_required,
                              mode, classification, reported_event_id)
select r.i, r.r, r.a, r.k, r.s, coalesce(r.req, '{}'), r.m, r.c, r.e
from json_to_recordset($1::json) as r(i uuid, r text, a text, k text, s text, req text[], m text, c text, e uuid)
on conflict (incident_id) do nothing
"""

CHANGE = """
update intake.incidents i set
    agencies_required = array(select distinct a from unnest(i.agencies_required || $2::text[]) a
                              where a <> all($3::text[]) order by a),
    classification = case when $4::text = 'OFFICIAL-SENSITIVE' then $4::text else i.classification end,
    terminal = i.terminal or $5,
    lead_incident_id = coalesce($6, i.lead_incident_id),
    updated_at = now()
where incident_id = $1
"""


class Accepted(NamedTuple):  # a tuple: built per accepted event, about 3x cheaper than a frozen dataclass
    """Where the broker put an event: the result intake returns, now and on every retry."""

    event_id: uuid.UUID
    incident_id: uuid.UUID
    event_type: str
    topic: str
    partition: int
    offset: int
    subject: str | None = None  # who sent it (token subject); None in rows older than the registry
    digest: bytes | None = None  # of the request payload (validation.payload_digest)


class Written(NamedTuple):
    """What one accepted event writes: its idempotency row, and what it changes in the registry."""

    accepted: Accepted
    report: IncidentRecord | None = None
    change: Change | None = None


def as_written(item: "Written | Accepted") -> "Written":
    """A bare Accepted (an event that changes nothing in the registry) as what the store writes."""
    return item if isinstance(item, Written) else Written(item)


class StoreUnavailable(RuntimeError):
    pass


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Our statements change no session state, so a connection returned to the pool needs
    no RESET ALL round trip (asyncpg's default costs one per query)."""


# Intake-minted event ids (no event_id, no Idempotency-Key) are recorded write-behind, at
# most this long after the answer: a client cannot retry what it has not yet been told.
WRITE_BEHIND_S = 0.02


class IdempotencyStore:
    def __init__(self, dsn: str, timeout_s: float) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._lookups: MicroBatcher[uuid.UUID, Accepted | None] = MicroBatcher(self._lookup_bulk)
        self._incidents: MicroBatcher[uuid.UUID, IncidentRecord | None] = MicroBatcher(self._incidents_bulk)
        self._records: MicroBatcher[Written, None] = MicroBatcher(self._record_bulk)
        self._soon: list[Written] = []
        self._soon_task: asyncio.Task | None = None

    async def start(self) -> None:
        try:
            await self._ensure_pool()
        except StoreUnavailable:
            pass  # retried on first use; /readyz says so meanwhile

    async def stop(self) -> None:
        if self._soon_task is not None:
            await asyncio.gather(self._soon_task, return_exceptions=True)
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

    async def incident(self, incident_id: uuid.UUID) -> IncidentRecord | None:
        """The registry's record of an incident (None: intake never accepted its report)."""
        return await self._incidents.submit(incident_id)

    async def incidents(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, IncidentRecord]:
        found = await self._incidents_bulk(incident_ids) if incident_ids else []
        return {r.incident_id: r for r in found if r is not None}

    async def record(self, written: Written | Accepted) -> None:
        await self._records.submit(as_written(written))

    async def keys_for_sealing(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """The incidents' data keys from the key service (made if new); PeopleErased for an erased one."""
        pool = await self._ensure_pool()
        try:
            async with pool.acquire(timeout=self._timeout_s) as conn:
                return await keys.keys_for_sealing(conn, incident_ids)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"key service: {exc.__class__.__name__}") from exc

    def record_soon(self, written: Written) -> None:
        """Write-behind: recorded within WRITE_BEHIND_S, in bulk, off the request's path (only for
        events that change nothing in the registry)."""
        self._soon.append(as_written(written))
        if self._soon_task is None or self._soon_task.done():
            self._soon_task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(WRITE_BEHIND_S)
        while self._soon:
            rows, self._soon = self._soon[:1000], self._soon[1000:]
            try:
                await self._record_bulk(rows)
            except StoreUnavailable as exc:
                log.error("idempotency store write-behind failed", count=len(rows), error=str(exc))

    async def record_many(self, written: list[Written | Accepted]) -> None:
        if written:
            await self._record_bulk([as_written(w) for w in written])

    async def _lookup_bulk(self, event_ids: list[uuid.UUID]) -> list[Accepted | None]:
        pool = await self._ensure_pool()
        try:
            rows = await pool.fetch(LOOKUP, event_ids, timeout=self._timeout_s)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        found = {row["event_id"]: Accepted(*row) for row in rows}
        return [found.get(event_id) for event_id in event_ids]

    async def _incidents_bulk(self, incident_ids: list[uuid.UUID]) -> list[IncidentRecord | None]:
        pool = await self._ensure_pool()
        try:
            rows = await pool.fetch(INCIDENTS, incident_ids, timeout=self._timeout_s)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"incident registry: {exc.__class__.__name__}") from exc
        found = {
            r["incident_id"]: IncidentRecord(
                incident_id=r["incident_id"], reporter=r["reporter"], reporting_agency=r["reporting_agency"],
                source_kind=r["source_kind"], source_id=r["source_id"], agencies_required=tuple(r["agencies_required"]),
                mode=r["mode"], classification=r["classification"], terminal=r["terminal"],
                lead_incident_id=r["lead_incident_id"],
            )
            for r in rows
        }
        return [found.get(i) for i in incident_ids]

    async def _record_bulk(self, written: list[Written]) -> list[None]:
        """Idempotency rows and registry changes of these events: one transaction."""
        pool = await self._ensure_pool()
        rows = _json([{"e": a.event_id, "i": a.incident_id, "t": a.event_type, "topic": a.topic, "p": a.partition,
                       "o": a.offset, "s": a.subject, "d": a.digest.hex() if a.digest is not None else None}
                      for a, _, _ in written])
        reports = _json([{"i": r.incident_id, "r": r.reporter, "a": r.reporting_agency, "k": r.source_kind,
                          "s": r.source_id, "req": r.agencies_required, "m": r.mode, "c": r.classification,
                          "e": a.event_id} for a, r, _ in written if r is not None])
        changes = [w.change.as_row() for w in written if w.change is not None]
        try:
            async with pool.acquire(timeout=self._timeout_s) as conn:
                async with conn.transaction():
                    await conn.execute(RECORD, rows, timeout=self._timeout_s)
                    if reports != "[]":
                        await conn.execute(REGISTER, reports, timeout=self._timeout_s)
                    if changes:
                        await conn.executemany(CHANGE, changes, timeout=self._timeout_s)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        return [None] * len(written)

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=8, timeout=self._timeout_s, reset=_keep_session
                    )
                except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                    raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
                try:
                    async with pool.acquire(timeout=self._timeout_s) as conn:
                        await migrations.migrate(conn, MIGRATIONS_DIR, SCHEMA)
                except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                    await pool.close()
                    raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
                self._pool = pool
        return self._pool


def _json(rows: list[dict]) -> str:
    """Rows for json_to_recordset (ids read back from the store are asyncpg's own UUID type)."""
    return orjson.dumps(rows, default=str).decode()
