"""Intake against the real broker and database: the app in-process (ASGI, with its
lifespan), and helpers to read what reached the topic."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

import httpx
import pytest

from services.intake.app import INTAKE_ROLE, create_app
from services.shared.auth import Role, mint_token
from services.shared.db import role_dsn
from services.shared.events import Agency
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from tests.support import read_records


@pytest.fixture(scope="session")
def intake_settings(test_settings: Settings, topics, database) -> Settings:
    return test_settings.model_copy(update={"intake_publish_timeout_s": 5.0})


@asynccontextmanager
async def running_intake_app(settings: Settings):
    """A fresh intake app with its lifespan started, and a client talking to it in-process: (app,
    client). It authenticates to the broker as intake does (`muster run intake`), with intake's own principal."""
    app = create_app(settings.as_principal("intake"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30) as client:
            yield app, client


@asynccontextmanager
async def running_intake(settings: Settings):
    """running_intake_app's client."""
    async with running_intake_app(settings) as (_, client):
        yield client


@pytest.fixture
async def intake(intake_settings):
    async with running_intake(intake_settings) as client:
        yield client


def intake_dsn(settings: Settings) -> str:
    """As intake runs: its own role, the owner of its schema's tables. Never the database's owner: the
    suite shares one database, and tables the owner made first, the role could not migrate after."""
    return role_dsn(settings, INTAKE_ROLE, settings.intake_database_url)


def bearer(settings: Settings, role: Role = Role.CONTROL_ROOM, agency: Agency = Agency.COUNCIL, subject: str = "op-17", **kw) -> dict:
    return {"Authorization": f"Bearer {mint_token(settings, subject=subject, role=role, agency=agency, **kw)}"}


async def read_topic(settings: Settings, catalog: TopicCatalog, topic_id: str = "incidents", timeout: float = 20.0) -> list:
    """Every record on the topic now, from the beginning to the end offsets."""
    return await read_records(settings, catalog.name(topic_id), catalog.spec_of(topic_id).partitions, timeout)


async def records_of(settings: Settings, catalog: TopicCatalog, event_id: str) -> list:
    """The records on the incidents topic carrying this event_id."""
    return [r for r in await read_topic(settings, catalog) if _event_id(r.value) == event_id]


def _event_id(value: bytes | None) -> str | None:
    """The record's event_id; other tests put poison records on the same topic, which carry none."""
    try:
        return json.loads(value)["event_id"]
    except (TypeError, ValueError, KeyError):
        return None
