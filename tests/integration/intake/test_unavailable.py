"""When the broker cannot confirm, intake answers 503 with Retry-After within its bound and never 2xx."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from tests.integration.intake.conftest import bearer, running_intake
from tests.integration.intake.test_api import report

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BOUND_S = 1.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


@pytest.fixture
def unreachable_broker(intake_settings):
    return intake_settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{_closed_port()}", "intake_publish_timeout_s": BOUND_S}
    )


async def test_a_report_while_the_broker_is_unreachable_gets_503_with_retry_after_within_the_bound(unreachable_broker):
    async with running_intake(unreachable_broker) as intake:
        started = time.monotonic()
        response = await intake.post("/v1/incidents", json=report(), headers=bearer(unreachable_broker))
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "unavailable"
    assert elapsed < BOUND_S + 1.0


async def test_a_batch_while_the_broker_is_unreachable_gets_503(unreachable_broker):
    async with running_intake(unreachable_broker) as intake:
        response = await intake.post("/v1/events:batch", json={"events": [{**report(), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4())}]}, headers=bearer(unreachable_broker))
    assert response.status_code == 503 and "Retry-After" in response.headers


async def test_readiness_says_the_broker_is_unreachable_while_health_is_fine(unreachable_broker):
    async with running_intake(unreachable_broker) as intake:
        ready = await intake.get("/readyz")
        health = await intake.get("/healthz")
    assert ready.status_code == 503 and ready.json()["broker"] is False and ready.json()["database"] is True
    assert health.status_code == 200


async def test_a_client_event_id_while_the_database_is_unreachable_gets_503_not_a_publish(intake_settings):
    settings = intake_settings.model_copy(
        update={"database_url": type(intake_settings.database_url)(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x"),
                "intake_publish_timeout_s": BOUND_S}
    )
    async with running_intake(settings) as intake:
        response = await intake.post("/v1/incidents", json=report(event_id=str(uuid.uuid4())), headers=bearer(settings))
    assert response.status_code == 503 and "idempotency store" in response.json()["detail"]
