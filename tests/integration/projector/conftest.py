"""A projector's world per test: its own topics (own prefix), its own migrated database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.projector import schema
from services.projector.service import Projector
from services.shared.codec import encode
from services.shared.kafka import apply_topics, make_admin, make_producer
from services.shared.kafka_security import apply_acls, remove_acls_under
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog


@dataclass
class World:
    settings: Settings
    catalog: TopicCatalog
    dsn: str
    producer: object

    async def publish(self, *events, topic: str | None = None) -> list:
        """Publish events in order (acks=all) to `topic` (default: incidents); returns the record metadata."""
        topic = topic or self.catalog.name("incidents")
        futures = []
        for event in events:
            e = encode(event)
            futures.append(await self.producer.send(topic, e.value, key=e.key, headers=e.headers))
        return [await f for f in futures]

    async def publish_raw(self, value: bytes, key: bytes = b"k"):
        return await self.producer.send_and_wait(self.catalog.name("incidents"), value, key=key)

    async def fetch(self, sql: str, *args):
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args):
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None


@pytest.fixture
async def world(test_settings, database, unique):
    """Own topic prefix, own database (migrated), own consumer group."""
    url = urlsplit(database)
    name = f"{url.path.lstrip('/')}_{unique}"
    dsn = urlunsplit((url.scheme, url.netloc, f"/{name}", url.query, url.fragment))
    admin_conn = await asyncpg.connect(database)
    await admin_conn.execute(f'create database "{name}"')
    await admin_conn.close()
    conn = await asyncpg.connect(dsn)
    await schema.migrate(conn)
    await conn.close()
    settings = test_settings.model_copy(update={
        "topic_prefix": f"{test_settings.topic_prefix}{unique}.",
        "database_url": type(test_settings.database_url)(dsn),
        # under the projector principal's group prefix (topics.yaml), as the run's topics are under its prefix
        "projector_consumer_group": f"{test_settings.topic_prefix}{unique}.muster-projector",
        "projector_metrics_port": 0,
        "projector_retry_max_seconds": 1.0,
    })
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog)
    await asyncio.to_thread(apply_acls, settings, catalog)  # a projector process runs as its own principal
    producer = make_producer(settings)
    await producer.start()
    try:
        yield World(settings, catalog, dsn, producer)
    finally:
        await producer.stop()
        await asyncio.to_thread(remove_acls_under, settings, settings.topic_prefix)
        try:
            await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)])
        finally:
            await admin.close()
        admin_conn = await asyncpg.connect(database)
        await admin_conn.execute(f'drop database if exists "{name}" with (force)')
        await admin_conn.close()


@pytest.fixture
async def running(world):
    """Start projectors in this process, as the projector principal (as `muster run projector`); each is
    stopped (cleanly) at the end of the test."""
    started: list[tuple[Projector, asyncio.Task]] = []

    def start(settings: Settings | None = None) -> Projector:
        projector = Projector((settings or world.settings).as_principal("projector"))
        started.append((projector, asyncio.create_task(projector.run())))
        return projector

    yield start
    for projector, task in started:
        projector.stop()
    for projector, task in started:
        await asyncio.wait_for(task, 30)

