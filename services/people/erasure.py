"""Erasing people with the owner's or administrator's URL (MUSTER_DATABASE_URL)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.people import retention as schedule
from services.shared import keys
from services.shared.settings import Settings


async def vacuum(conn: asyncpg.Connection) -> None:
    """Reclaim the erased keys' old row versions now rather than at the next autovacuum (PostgreSQL
    keeps a deleted value on disk until then). Without the right to, PostgreSQL only warns."""
    await conn.execute("vacuum muster_keys.data_keys")


async def erase(settings: Settings, incident_id: uuid.UUID, *, by: str, reason: str) -> keys.Erasure:
    conn = await asyncpg.connect(settings.database_url.get_secret_value(), timeout=10)
    try:
        erased = await keys.erase(conn, incident_id, by=by, reason=reason, basis="request")
        await vacuum(conn)
        return erased
    finally:
        await conn.close()


async def retention(settings: Settings, now: datetime, *, dry_run: bool = False) -> list[schedule.Due]:
    conn = await asyncpg.connect(settings.database_url.get_secret_value(), timeout=10)
    try:
        found = await schedule.run(conn, schedule.Schedule.of(settings), now, dry_run=dry_run)
        if found and not dry_run:
            await vacuum(conn)
        return found
    finally:
        await conn.close()
