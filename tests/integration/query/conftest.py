"""The query service against the real PostgreSQL: its own migrated database, facts written
by the projector's own batch code (no Kafka needed to fill a store), and the app served by
uvicorn on a free port so the stream is a real HTTP stream."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import uvicorn

from services.projector import repository, schema
from services.projector.handlers import Batch, Position, stage
from services.query.app import create_app
from services.shared import events as ev
from services.shared.auth import Role, mint_token
from services.shared.codec import encode
from services.shared.events import Agency
from services.shared.settings import Settings
from tests import factories as f
from tests.support import free_port

_offsets = iter(range(10**9))


@dataclass
class Store:
    dsn: str

    async def write(self, *events: ev.Event) -> None:
        """Write facts exactly as the projector does: one batch, one transaction."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await repository.prepare(conn)
            batch = Batch()
            for event in events:
                stage(batch, event, encode(event).value.decode(), Position("query-tests", 0, next(_offsets)))
            await repository.write_batch(conn, batch, "query-tests")
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args) -> list:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def audit_rows(self, subject: str) -> list:
        return await self.fetch(
            "select subject, role, agency, record_id, classification, endpoint, reason from access_audit "
            "where subject = $1 order by audit_id", subject,
        )


@pytest.fixture(scope="session")
async def store(database) -> Store:
    """A database of its own for the query tests, migrated (0001 and 0002)."""
    url = urlsplit(database)
    name = f"{url.path.lstrip('/')}_query"
    dsn = urlunsplit((url.scheme, url.netloc, f"/{name}", url.query, url.fragment))
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(f'drop database if exists "{name}"')
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await schema.migrate(conn)
    finally:
        await conn.close()
    yield Store(dsn)
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def query_settings(test_settings: Settings, store: Store) -> Settings:
    return test_settings.model_copy(update={
        "database_url": type(test_settings.database_url)(store.dsn), "query_port": free_port(),
    })


@pytest.fixture(scope="session")
async def query_url(query_settings: Settings):
    """The query app served by uvicorn in this event loop."""
    config = uvicorn.Config(
        create_app(query_settings), host="127.0.0.1", port=query_settings.query_port, log_config=None,
        access_log=False, lifespan="on", timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    from tests.support import wait_until

    await wait_until(lambda: server.started, timeout=20, what="the query service to start")
    yield f"http://127.0.0.1:{query_settings.query_port}"
    server.should_exit = True
    await task


@pytest.fixture
async def client(query_url):
    async with httpx.AsyncClient(base_url=query_url, timeout=20) as c:
        yield c


def token(settings: Settings, role: Role, agency: Agency, subject: str | None = None) -> str:
    return mint_token(settings, subject=subject or f"{role.value}-{agency.value}", role=role, agency=agency)


def headers(settings: Settings, role: Role, agency: Agency, *, subject: str | None = None, reason: str | None = None) -> dict:
    h = {"Authorization": f"Bearer {token(settings, role, agency, subject)}"}
    if reason is not None:
        h["X-Access-Reason"] = reason
    return h


def raised(incident: ev.IncidentReported, level: int = 1, **overrides) -> ev.EscalationRaised:
    fields = dict(
        incident_id=incident.incident_id, occurred_at=incident.occurred_at + timedelta(minutes=1),
        source=f.source(kind="system", id="escalation", agency=None), classification=incident.classification,
        mode=incident.mode, level=level, level_name="duty officer", agencies=(Agency.COUNCIL,), rule_id="r1",
        rule_set_version="v1", reason="severity", category=incident.category, severity=incident.severity,
        ward_code=incident.location.ward_code,
        methane=ev.Methane(
            major_incident=False, exact_location=incident.location.ward_code, type=incident.category.value,
            hazards=(), access="unknown", number_of_casualties=ev.Casualties(),
            emergency_services_present=(), emergency_services_required=(),
        ),
    )
    fields.update(overrides)
    return ev.EscalationRaised(**fields)


def new_id() -> uuid.UUID:
    return uuid.uuid4()
