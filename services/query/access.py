"""Who sees what: the rules in Python, and the database scope that backs them.

The same rules live in PostgreSQL (migration 0002_query_access.sql): the query service
connects as `muster_query`, and every request runs in one transaction that states the
caller with `set_config(..., true)`, so row-level security applies whatever the Python
code asks for. The Python rules below are applied to what comes back as well (two locks,
either of which is enough on its own).

- OFFICIAL records: every authenticated caller.
- OFFICIAL-SENSITIVE records: the cleared roles (safeguarding, admin) and the agencies that
  own the incident (its source agency and every agency required), and only with a stated
  reason (X-Access-Reason); every such read is audited.
- Restricted fields (people): the operational roles (control room, responder, safeguarding,
  admin) of the owning agencies, with a stated reason, every such response audited whatever
  the classification; redacted (null) for everyone else.
- A record the caller may not see answers 404, exactly as one that does not exist.
"""

from __future__ import annotations

import unicodedata

from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from services.shared import access as shared_access
from services.shared.access import CLEARED_ROLES, SENSITIVE
from services.shared.auth import Principal
from services.shared.events import SENSITIVE_CATEGORIES, Category
REASON_HEADER = "X-Access-Reason"
REASON_MAX = 500


class ReasonRequired(Exception):
    """A sensitive record the caller may read, but no reason was stated."""


@dataclass(frozen=True, slots=True)
class Reader:
    """The caller and the reason they stated for this request (None: none stated)."""

    principal: Principal
    reason: str | None = None

    @property
    def cleared(self) -> bool:
        return self.principal.role in CLEARED_ROLES


def clean_reason(value: str | None) -> str | None:
    """The stated reason, trimmed; None when absent or when it states nothing (no letter or digit:
    blank, punctuation, invisible characters). Too long, a control character or bytes that are not
    UTF-8 are the caller's error. An HTTP header's value arrives decoded as Latin-1 (each byte one
    character): a UTF-8 reason is read as such (it was audited as mojibake), and two raw bytes
    0x80 0x81 (two C1 controls) were a reason that unlocked people (red-team probe, 2026-12-04)."""
    if value is None:
        return None
    try:
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        pass  # not from a header's bytes: already text
    except UnicodeDecodeError:
        raise ValueError(f"{REASON_HEADER}: must be UTF-8 text") from None
    value = value.strip()
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError(f"{REASON_HEADER}: control characters are not allowed")
    if not any(c.isalnum() for c in value):
        return None
    if len(value) > REASON_MAX:
        raise ValueError(f"{REASON_HEADER}: at most {REASON_MAX} characters")
    return value


def owns(reader: Reader, source_agency: str | None, agencies_required: Iterable[str] | None) -> bool:
    return shared_access.owns(reader.principal, source_agency, agencies_required)


def may_see(reader: Reader, classification: str, source_agency: str | None, agencies_required) -> bool:
    if classification != SENSITIVE:
        return True
    return reader.reason is not None and shared_access.may_see_incident(
        reader.principal, classification, source_agency, agencies_required
    )


def may_see_people(reader: Reader, source_agency: str | None, agencies_required) -> bool:
    """People: the operational roles of an owning agency, and only with a stated reason (every
    response carrying them is audited, whatever the classification)."""
    return reader.reason is not None and shared_access.may_see_people(reader.principal, source_agency, agencies_required)


def may_see_row(reader: Reader, row) -> bool:
    return may_see(reader, row["classification"], row.get("source_agency"), row.get("agencies_required"))


def visible(reader: Reader, rows: Iterable) -> list:
    """The rows this reader may see (the database already filtered them; this is the second lock)."""
    return [r for r in rows if may_see_row(reader, r)]


def reachable_categories(reader: Reader, categories: list[str]) -> list[str]:
    """The asked-for categories this reader could find anything in. A sensitive category's
    incidents are always OFFICIAL-SENSITIVE (its default is a floor, never lowered), so a
    reader who stated no reason can find none: leaving them out spares a scan that RLS
    would answer with nothing anyway."""
    if reader.reason is not None:
        return categories
    return [c for c in categories if Category(c) not in SENSITIVE_CATEGORIES]


def settings_for(reader: Reader) -> tuple[str, str, str, str]:
    """The per-transaction settings the row-level security policies read."""
    p = reader.principal
    return p.role.value, p.agency.value, reader.reason or "", p.org or ""


_SCOPE = (
    "select set_config('muster.role', $1, true), set_config('muster.agency', $2, true), "
    "set_config('muster.reason', $3, true), set_config('muster.org', $4, true)"
)


@asynccontextmanager
async def scoped(pool: asyncpg.Pool, reader: Reader):
    """A connection in a transaction that PostgreSQL knows is this reader's."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(_SCOPE, *settings_for(reader))
            yield conn
