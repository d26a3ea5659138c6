"""Plain, ordered SQL migrations (migrations/NNNN_name.sql), applied once each.

`migrate(conn)` records each applied file in `schema_migrations` of the target schema and
holds an advisory lock, so two processes migrating at once apply nothing twice. The
rebuild applies the same files into a shadow schema through `search_path`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.shared.db import STATUS_TABLES, ensure_roles

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_MIGRATE_LOCK = 0x6D75_7374_6D69  # "mustmi": one migrator at a time

# Every table the projector writes, in the order the rebuild swaps them.
TABLES = STATUS_TABLES


class MigrationError(ValueError):
    """A migration file is misnamed or numbered twice."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: a migration is named NNNN_name.sql (lower case, digits, underscores)")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version:04d} is already used by {found[version].name}")
        found[version] = Migration(version, path.stem, path.read_text())
    return [found[v] for v in sorted(found)]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def migrate(conn: asyncpg.Connection, schema: str = "public") -> list[str]:
    """Apply the pending migrations into `schema`; returns the names applied (none: up to date)."""
    applied_now: list[str] = []
    qschema = quote_ident(schema)
    if await conn.fetchval("select rolsuper or rolcreaterole from pg_roles where rolname = current_user"):
        await ensure_roles(conn)  # the administrator migrates: make the service roles first
    await conn.execute("select pg_advisory_lock($1)", _MIGRATE_LOCK)
    try:
        await conn.execute(f"create schema if not exists {qschema}")
        await conn.execute(
            f"create table if not exists {qschema}.schema_migrations ("
            " version integer primary key, name text not null,"
            " applied_at timestamptz not null default now())"
        )
        done = {r["version"] for r in await conn.fetch(f"select version from {qschema}.schema_migrations")}
        for migration in migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(f"set local search_path to {qschema}")
                await conn.execute(migration.sql)
                await conn.execute(
                    f"insert into {qschema}.schema_migrations (version, name) values ($1, $2)",
                    migration.version, migration.name,
                )
            applied_now.append(migration.name)
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _MIGRATE_LOCK)
    return applied_now
