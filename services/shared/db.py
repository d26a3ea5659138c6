"""PostgreSQL roles: one per service (services/shared/sql/roles.sql, docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.shared.settings import Settings

# The status store's tables (written by the projector, read by the query service), in the order
# the rebuild swaps them.
STATUS_TABLES = ("incidents", "incident_events", "escalations", "ward_tension", "ward_tension_history",
                 "casework_cases", "casework_alerts", "tension_calendar", "projector_offsets")
ROLES_SQL = Path(__file__).resolve().parent / "sql" / "roles.sql"
KEYS_SQL = Path(__file__).resolve().parent / "sql" / "keys.sql"  # the key service (docs/security.md)
_ROLES_LOCK = 0x6D75_7374_726F  # "mustro": one bootstrap at a time (CREATE ROLE races across databases)


def role_dsn(settings: Settings, role: str, explicit=None) -> str:
    """A service's own URL: its explicit setting (MUSTER_<SERVICE>_DATABASE_URL), else the main URL
    with the user replaced by the service's role (local PostgreSQL trusts loopback; no password)."""
    if explicit is not None:
        return explicit.get_secret_value()
    url = urlsplit(settings.database_url.get_secret_value())
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{role}@{host}" + (f":{url.port}" if url.port else "")
    return urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment))


async def ensure_roles(conn: asyncpg.Connection) -> None:
    """Make the service roles and their schemas, and the key service (as the administrator); safe to repeat."""
    await conn.execute("select pg_advisory_lock($1)", _ROLES_LOCK)
    try:
        await conn.execute(ROLES_SQL.read_text())
        await conn.execute(KEYS_SQL.read_text())
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _ROLES_LOCK)


async def role_problems(conn: asyncpg.Connection, tables: tuple[str, ...]) -> list[str]:
    """Why the connected role may not serve reads under row-level security: it is a superuser, has
    BYPASSRLS, or owns (or is a member of the owner of) one of the tables."""
    problems = []
    row = await conn.fetchrow("select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user")
    if row["rolsuper"]:
        problems.append(f"role {row['rolname']} is a superuser")
    if row["rolbypassrls"]:
        problems.append(f"role {row['rolname']} has BYPASSRLS")
    owned = await conn.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relname = any($1::text[]) and pg_has_role(current_user, c.relowner, 'USAGE')",
        list(tables),
    )
    if owned and not row["rolsuper"]:
        problems.append(f"role {row['rolname']} owns (or acts as the owner of) {', '.join(sorted(r[0] for r in owned))}")
    return problems
