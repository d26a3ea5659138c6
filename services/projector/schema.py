"""The status store's schema: plain, ordered SQL migrations (migrations/NNNN_name.sql), applied
once each by the shared runner (services/shared/migrations.py). The rebuild applies the same
files into a shadow schema through `search_path`.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from services.shared import migrations as _runner
from services.shared.db import STATUS_TABLES, ensure_roles
from services.shared.migrations import Migration, MigrationError, quote_ident

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Every table the projector writes, in the order the rebuild swaps them.
TABLES = STATUS_TABLES

__all__ = ["MIGRATIONS_DIR", "TABLES", "Migration", "MigrationError", "migrate", "migrations", "quote_ident"]


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    return _runner.migrations(directory)


async def migrate(conn: asyncpg.Connection, schema: str = "public") -> list[str]:
    """Apply the status store's pending migrations into `schema`; returns the names applied."""
    if await conn.fetchval("select rolsuper or rolcreaterole from pg_roles where rolname = current_user"):
        await ensure_roles(conn)  # the administrator migrates: make the service roles first
    return await _runner.migrate(conn, MIGRATIONS_DIR, schema)
