"""Plain, ordered SQL migrations (a directory of NNNN_name.sql files), applied once each.

`migrate(conn, directory, schema)` records each applied file in `schema_migrations` of the
target schema and holds an advisory lock, so two processes migrating at once apply nothing
twice. Each file runs with `search_path` set to the target schema. Used by the projector
(the status store, services/projector/migrations) and intake (its own `intake` schema).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_MIGRATE_LOCK = 0x6D75_7374_6D69  # "mustmi": one migrator at a time


class MigrationError(ValueError):
    """A migration file is misnamed or numbered twice."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(directory: Path) -> list[Migration]:
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


async def migrate(conn: asyncpg.Connection, directory: Path, schema: str = "public") -> list[str]:
    """Apply the pending migrations into `schema`; returns the names applied (none: up to date)."""
    applied_now: list[str] = []
    qschema = quote_ident(schema)
    await conn.execute("select pg_advisory_lock($1)", _MIGRATE_LOCK)
    try:
        if not await conn.fetchval("select exists (select 1 from pg_namespace where nspname = $1)", schema):
            await conn.execute(f"create schema {qschema}")  # a service role that may not create one finds it made
        await conn.execute(
            f"create table if not exists {qschema}.schema_migrations ("
            " version integer primary key, name text not null,"
            " applied_at timestamptz not null default now())"
        )
        done = {r["version"] for r in await conn.fetch(f"select version from {qschema}.schema_migrations")}
        for migration in migrations(directory):
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
