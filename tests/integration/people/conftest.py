"""People sealed, erased and kept to their schedule, against the real broker and database: a
projector world of its own (tests/integration/projector/conftest.py), with intake and the query
service in-process on it."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import asyncpg
import httpx

from services.query.app import create_app as create_query_app
from tests.integration.projector.conftest import running, world  # noqa: F401  (fixtures)


@asynccontextmanager
async def running_query(settings):
    app = create_query_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query", timeout=30) as c:
            yield c


def as_role(dsn: str, role: str) -> str:
    """The DSN with the user replaced by a service role (local PostgreSQL trusts loopback)."""
    from urllib.parse import urlsplit, urlunsplit

    url = urlsplit(dsn)
    netloc = f"{role}@{url.hostname}" + (f":{url.port}" if url.port else "")
    return urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment))


async def tables_holding(dsn: str, needle: str) -> list[str]:
    """Every table (every schema but the system's) with a row whose text holds `needle`."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') "
            "and n.nspname not like 'pg_toast%' and c.relpersistence <> 't'")
        found = []
        for schema, table in tables:
            q = f'select count(*) from "{schema}"."{table}" t where strpos(t::text, $1) > 0'
            if await conn.fetchval(q, needle):
                found.append(f"{schema}.{table}")
        return found
    finally:
        await conn.close()


async def key_of(dsn: str, incident_id: uuid.UUID) -> bytes | None:
    """As the administrator (who alone can read the key service's table)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("select data_key from muster_keys.data_keys where incident_id = $1", incident_id)
    finally:
        await conn.close()


async def write_facts(dsn: str, *events) -> None:
    """Facts into the store exactly as the projector writes them (one batch)."""
    from tests.integration.query.conftest import Store

    await Store(dsn).write(*events)
