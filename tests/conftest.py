"""Session fixtures: the real Kafka broker and PostgreSQL, isolated per test run.

The broker and database are started by `muster dev up` (or reused if they run).
Each test session gets its own topic prefix and its own database, so concurrent runs
never collide; both are removed when the session ends.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from services.shared.settings import Settings

RUN_ID = uuid.uuid4().hex[:8]


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        if "unit" in path.parts:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def infra(base_settings: Settings) -> Settings:
    """Start (or reuse) the local PostgreSQL and Kafka. Never mocked."""
    from services import dev

    if os.environ.get("MUSTER_TEST_EXTERNAL_INFRA") != "1":
        dev.up(base_settings, topics=False)  # each session applies its own, under its prefix
    return base_settings


@pytest.fixture(scope="session")
def test_settings(infra: Settings) -> Settings:
    """Settings for this run: its own topic prefix and its own database."""
    url = urlsplit(infra.database_url.get_secret_value())
    test_db = f"muster_test_{RUN_ID}"
    dsn = urlunsplit((url.scheme, url.netloc, f"/{test_db}", url.query, url.fragment))
    return infra.model_copy(update={"topic_prefix": f"test-{RUN_ID}.", "database_url": type(infra.database_url)(dsn)})


@pytest.fixture(scope="session")
async def topics(test_settings: Settings):
    """Every topic of topics.yaml, created under this run's prefix; deleted afterwards."""
    from services.shared.kafka import apply_topics, make_admin
    from services.shared.kafka_security import apply_acls, remove_acls_under
    from services.shared.topics import TopicCatalog

    catalog = TopicCatalog.from_settings(test_settings)
    admin = make_admin(test_settings)
    await admin.start()
    await apply_topics(admin, catalog)
    await asyncio.to_thread(apply_acls, test_settings, catalog)  # as `muster topics apply`: each service's grants
    yield catalog
    await asyncio.to_thread(remove_acls_under, test_settings, f"test-{RUN_ID}.")
    try:
        existing = set(await admin.list_topics())
        # Topics of this run: its prefix, including faust's internal topics of apps named under it.
        mine = [t for t in existing if RUN_ID in t]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def database(test_settings: Settings):
    """This run's own database, dropped at the end. Yields its DSN."""
    import asyncpg

    dsn = test_settings.database_url.get_secret_value()
    url = urlsplit(dsn)
    name = url.path.lstrip("/")
    admin_dsn = urlunsplit((url.scheme, url.netloc, "/postgres", url.query, url.fragment))
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    from services.shared.db import ensure_roles

    conn = await asyncpg.connect(dsn)
    try:
        await ensure_roles(conn)  # the service roles and their schemas, as `muster db migrate` makes them
    finally:
        await conn.close()
    yield dsn
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names made inside one test."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def own_topics(test_settings: Settings, unique: str):
    """Every topic under a prefix of this test's own: for a test that reads a topic from its
    start, restarts a worker from the start, or must not see what other tests publish.
    Yields (settings with that prefix, its TopicCatalog); the topics are deleted afterwards."""
    from services.shared.kafka import apply_topics, make_admin
    from services.shared.kafka_security import apply_acls, remove_acls_under
    from services.shared.topics import TopicCatalog

    settings = test_settings.model_copy(update={"topic_prefix": f"{test_settings.topic_prefix}own-{unique}."})
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog)
    await asyncio.to_thread(apply_acls, settings, catalog)
    yield settings, catalog
    await asyncio.to_thread(remove_acls_under, settings, settings.topic_prefix)
    try:
        await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)])
    finally:
        await admin.close()
