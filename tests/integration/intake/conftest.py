"""Intake against the real broker and database: the app in-process (ASGI, with its
lifespan), and helpers to read what reached the topic."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import httpx
import pytest
from aiokafka import TopicPartition

from services.intake.app import create_app
from services.shared.auth import Role, mint_token
from services.shared.events import Agency
from services.shared.kafka import make_consumer
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog


@pytest.fixture(scope="session")
def intake_settings(test_settings: Settings, topics, database) -> Settings:
    return test_settings.model_copy(update={"intake_publish_timeout_s": 5.0})


@asynccontextmanager
async def running_intake(settings: Settings):
    """A fresh intake app with its lifespan started, and a client talking to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30) as client:
            yield client


@pytest.fixture
async def intake(intake_settings):
    async with running_intake(intake_settings) as client:
        yield client


def bearer(settings: Settings, role: Role = Role.CONTROL_ROOM, agency: Agency = Agency.COUNCIL, subject: str = "op-17", **kw) -> dict:
    return {"Authorization": f"Bearer {mint_token(settings, subject=subject, role=role, agency=agency, **kw)}"}


async def read_topic(settings: Settings, catalog: TopicCatalog, topic_id: str = "incidents", timeout: float = 20.0) -> list:
    """Every record on the topic now, from the beginning to the end offsets."""
    topic = catalog.name(topic_id)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(catalog.spec_of(topic_id).partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            if loop.time() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout}s")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


async def records_of(settings: Settings, catalog: TopicCatalog, event_id: str) -> list:
    """The records on the incidents topic carrying this event_id."""
    return [r for r in await read_topic(settings, catalog) if json.loads(r.value)["event_id"] == event_id]
