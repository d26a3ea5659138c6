"""The key service's client: the calls each role may make on schema `muster_keys`
(migration 0008_people_keys.sql, docs/security.md). The keys never leave PostgreSQL except
through these functions, and each is granted to one role only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.shared import sealing

BASES = ("request", "retention")


class PeopleErased(Exception):
    """An incident whose people were erased: nothing can be sealed for it again."""

    def __init__(self, incident_ids: list[uuid.UUID]) -> None:
        super().__init__(incident_ids)
        self.incident_ids = incident_ids


@dataclass(frozen=True, slots=True)
class Erasure:
    incident_id: uuid.UUID
    erased_at: datetime
    erased_now: bool  # False: it had been erased before


async def keys_or_erased(conn: asyncpg.Connection, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
    """Intake: each incident's data key, made now if it has none; None for an incident whose key
    was erased (nothing can be sealed for it again)."""
    ids = list(dict.fromkeys(incident_ids))
    rows = await conn.fetch("select incident_id, data_key from muster_keys.keys_for_sealing($1::uuid[], $2::bytea[])",
                            ids, [sealing.new_key() for _ in ids])
    found = {r["incident_id"]: r["data_key"] for r in rows}
    return {i: found.get(i) for i in ids}


async def keys_for_sealing(conn: asyncpg.Connection, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
    """`keys_or_erased`, raising PeopleErased naming the incidents whose keys were erased."""
    found = await keys_or_erased(conn, incident_ids)
    erased = [i for i, key in found.items() if key is None]
    if erased:
        raise PeopleErased(erased)
    return found


async def key_for_reading(conn: asyncpg.Connection, incident_id: uuid.UUID) -> bytes | None:
    """The query service, in the reader's scope (muster.role, agency, reason set): the key, or None
    when the reader may not read people or the key was erased."""
    return await conn.fetchval("select muster_keys.key_for_reading($1)", incident_id)


async def erasure_of(conn: asyncpg.Connection, incident_id: uuid.UUID) -> datetime | None:
    """When the incident's people were erased (None: not erased, or not for this reader)."""
    return await conn.fetchval("select erased_at from muster_keys.erasure_of($1)", incident_id)


async def erase(conn: asyncpg.Connection, incident_id: uuid.UUID, *, by: str, reason: str,
                basis: str = "request") -> Erasure:
    """Delete the incident's data key and record who, when, why (the owner's or administrator's URL)."""
    if basis not in BASES:
        raise ValueError(f"basis: one of {', '.join(BASES)}")
    if not by.strip():
        raise ValueError("by: who erases (an operator id) is required")
    if not reason.strip():
        raise ValueError("reason: why the people are erased is required")
    row = await conn.fetchrow("select erased_at, erased_now from muster_keys.erase($1, $2, $3, $4)",
                              incident_id, by.strip(), reason.strip(), basis)
    return Erasure(incident_id, row["erased_at"], row["erased_now"])


async def held(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """Incidents whose data keys are still held."""
    return [r["incident_id"] for r in await conn.fetch("select incident_id from muster_keys.held()")]
