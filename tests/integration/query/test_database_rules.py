"""The database holds the line on its own: connected directly as the application role, no
SQL sees around row-level security, reads a restricted column, or rewrites the audit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from services.query.app import query_dsn
from tests import factories as f
from tests.integration.query.conftest import raised

pytestmark = pytest.mark.postgres

T = datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
async def rows(store):
    official = f.reported(occurred_at=T, category="fire", source=f.source(agency="council"),
                          people=({"role": "victim", "name": "Someone"},))
    sensitive = f.reported(occurred_at=T + timedelta(minutes=1), category="domestic_abuse",
                           source=f.source(agency="police"), agencies_required=("police",))
    await store.write(official, sensitive, raised(sensitive))
    return official.incident_id, sensitive.incident_id


@pytest.fixture
async def app_conn(query_settings):
    conn = await asyncpg.connect(query_dsn(query_settings))
    yield conn
    await conn.close()


async def _as(conn, role: str, agency: str, reason: str = ""):
    await conn.execute(
        "select set_config('muster.role', $1, false), set_config('muster.agency', $2, false), "
        "set_config('muster.reason', $3, false)", role, agency, reason,
    )


async def test_the_application_role_is_not_the_owner_nor_a_superuser(app_conn):
    row = await app_conn.fetchrow("select rolsuper, rolbypassrls from pg_roles where rolname = current_user")
    assert (row["rolsuper"], row["rolbypassrls"]) == (False, False)
    assert await app_conn.fetchval("select count(*) from pg_tables where tableowner = current_user") == 0


async def test_without_stating_who_it_is_the_application_role_sees_no_row(app_conn, rows):
    for table in ("incidents", "incident_events", "escalations", "ward_tension", "ward_tension_history",
                  "tension_calendar"):
        assert await app_conn.fetchval(f"select count(*) from {table}") == 0, table


async def test_an_uncleared_agency_sees_no_sensitive_row_even_with_a_reason(app_conn, rows):
    official, sensitive = rows
    await _as(app_conn, "analyst", "council", "looking")
    ids = {r[0] for r in await app_conn.fetch("select incident_id from incidents where incident_id = any($1)", list(rows))}
    assert ids == {official}
    assert await app_conn.fetchval("select count(*) from incident_events where incident_id = $1", sensitive) == 0
    assert await app_conn.fetchval("select count(*) from escalations where incident_id = $1", sensitive) == 0
    assert await app_conn.fetchval("select count(*) from incidents where classification = 'OFFICIAL-SENSITIVE'") == 0


async def test_the_owning_agency_sees_the_sensitive_row_only_with_a_reason(app_conn, rows):
    _, sensitive = rows
    await _as(app_conn, "responder", "police")
    assert await app_conn.fetchval("select count(*) from incidents where incident_id = $1", sensitive) == 0
    await _as(app_conn, "responder", "police", "attending")
    assert await app_conn.fetchval("select count(*) from incidents where incident_id = $1", sensitive) == 1


async def test_restricted_columns_cannot_be_read_directly(app_conn, rows):
    await _as(app_conn, "admin", "council", "audit")
    for sql in ("select people from incidents", "select * from incidents", "select payload from incident_events"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.fetch(sql)


async def test_restricted_fields_come_only_through_the_checking_function(app_conn, rows):
    official, _ = rows
    await _as(app_conn, "analyst", "police")
    assert await app_conn.fetchval("select muster_access.people_of($1)", official) is None
    assert await app_conn.fetchval(
        "select count(*) from incident_events where incident_id = $1 and payload_open ? 'people'", official) == 0
    await _as(app_conn, "control_room", "council")  # an owner, operational, but no reason stated
    assert await app_conn.fetchval("select muster_access.people_of($1)", official) is None
    await _as(app_conn, "cctv_operator", "council", "review")  # an owner with a reason, not operational
    assert await app_conn.fetchval("select muster_access.people_of($1)", official) is None
    await _as(app_conn, "control_room", "council", "caller welfare check")
    assert "Someone" in str(await app_conn.fetchval("select muster_access.people_of($1)", official))


async def test_the_application_role_cannot_switch_off_the_rules(app_conn, rows):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute("set role postgres")
    await app_conn.execute("set row_security = off")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.fetch("select incident_id from incidents")
    await app_conn.execute("reset row_security")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute("alter table incidents disable row level security")


async def test_the_application_role_cannot_write_the_store(app_conn, rows):
    official, _ = rows
    await _as(app_conn, "admin", "council", "x")
    for sql in ("update incidents set status = 'closed'", "delete from incident_events",
                "insert into ward_tension_history select * from ward_tension_history limit 0",
                "truncate escalations"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.execute(sql)


async def test_the_audit_takes_inserts_and_refuses_updates_and_deletes(app_conn, store):
    await app_conn.execute(
        "insert into access_audit (subject, role, agency, record_kind, record_id, classification, endpoint, reason) "
        "values ('rls-test', 'admin', 'council', 'incident', 'x', 'OFFICIAL-SENSITIVE', '/test', 'testing')"
    )
    for sql in ("update access_audit set reason = 'changed'", "delete from access_audit", "truncate access_audit",
                "select * from access_audit"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.execute(sql)
    owner = await asyncpg.connect(store.dsn)  # even the owner is stopped by the trigger
    try:
        for sql in ("update access_audit set reason = 'changed'", "delete from access_audit", "truncate access_audit"):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await owner.execute(sql)
    finally:
        await owner.close()
    assert [r["reason"] for r in await store.audit_rows("rls-test")] == ["testing"]


async def test_an_audit_row_needs_a_reason(app_conn):
    with pytest.raises(asyncpg.CheckViolationError):
        await app_conn.execute(
            "insert into access_audit (subject, role, agency, record_kind, record_id, classification, endpoint, reason) "
            "values ('rls-test-2', 'admin', 'council', 'incident', 'x', 'OFFICIAL-SENSITIVE', '/test', '  ')"
        )
