"""Personal data and report free text never reach a log line or a metric.

A canary person name and canary description text go through the whole pipeline (intake ->
incidents topic -> escalation, tension, projector -> query) with every service a real
process; two poison records carrying the canary go to the dead-letter path. Then every
service's log and every /metrics output is searched for the canary.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import asyncpg
import httpx
import orjson
import pytest

from services.shared.auth import Role, mint_token
from services.shared.events import Agency
from services.shared.kafka import make_producer
from tests.factories import POPLAR
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

CANARY_NAME = "Zebediah Quillfeather-Okonkwo"
CANARY_TEXT = "canary-7f3a marmalade kestrel under the viaduct"
CANARY_WORDS = ("Zebediah", "Quillfeather", "canary-7f3a", "marmalade kestrel")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _headers(settings, role: Role = Role.CONTROL_ROOM) -> dict:
    token = mint_token(settings, subject="ops-canary", role=role, agency=Agency.COUNCIL)
    return {"Authorization": f"Bearer {token}"}


def _report() -> dict:
    return {
        "category": "violence",
        "severity": 5,
        "location": {"ward_code": POPLAR, "address": f"14 {CANARY_TEXT}"},
        "description": f"{CANARY_NAME} said: {CANARY_TEXT}",
        "occurred_at": _now(),
        "casualties": {"serious": 2, "minor": 1},
        "people": [
            {"role": "victim", "name": CANARY_NAME, "age": 34, "description": CANARY_TEXT},
            {"role": "subject", "name": f"{CANARY_NAME} Jr", "description": CANARY_TEXT},
        ],
    }


def _poison(incident_id: str) -> list[bytes]:
    """A report that fails validation (severity 9) and a record that is not JSON, both with the canary."""
    bad = {**_report(), "event_type": "IncidentReported", "schema_version": 1, "severity": 9,
           "event_id": str(uuid.uuid4()), "incident_id": incident_id, "recorded_at": _now(),
           "source": {"kind": "public", "id": CANARY_NAME}}
    return [orjson.dumps(bad), f"{CANARY_NAME}: {CANARY_TEXT} {{not json".encode()]


async def _incident_stored(dsn: str, incident_id: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("select count(*) from incidents where incident_id = $1", uuid.UUID(incident_id)))
    finally:
        await conn.close()


def _metric_total(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.fixture(scope="session")
async def canary_ran(stack, topics):
    """The canary incident, a note about it and two poison records, all through the pipeline."""
    intake = stack.services["intake"].url
    async with httpx.AsyncClient(timeout=20) as client:
        raised = await client.post(f"{intake}/v1/incidents", json=_report(), headers=_headers(stack.settings))
        assert raised.status_code == 202, raised.text
        incident_id = raised.json()["incident_id"]
        noted = await client.post(
            f"{intake}/v1/incidents/{incident_id}/events",
            json={"event_type": "NoteAdded", "text": f"{CANARY_NAME} rang back: {CANARY_TEXT}", "occurred_at": _now()},
            headers=_headers(stack.settings),
        )
        assert noted.status_code == 202, noted.text

        producer = make_producer(stack.settings)
        await producer.start()
        try:
            for value in _poison(incident_id):
                await producer.send_and_wait(topics.name("incidents"), value, key=incident_id.encode())
        finally:
            await producer.stop()

        dsn = stack.settings.database_url.get_secret_value()
        await wait_until(lambda: _incident_stored(dsn, incident_id), timeout=60, what="the projector stores the canary")

        async def dead_lettered(service: str) -> bool:
            text = (await client.get(f"{stack.services[service].url}/metrics")).text
            return _metric_total(text, f"muster_{service}_dead_letters_total") >= 2

        for service in ("projector", "tension", "escalation"):
            if service in stack.services:
                await wait_until(lambda s=service: dead_lettered(s), timeout=60, what=f"{service} dead-letters the poison")
        if "escalation" in stack.services:
            async def escalated() -> bool:
                text = (await client.get(f"{stack.services['escalation'].url}/metrics")).text
                return _metric_total(text, "muster_escalation_escalations_total") >= 1

            await wait_until(escalated, timeout=60, what="the canary incident escalates")
        if "query" in stack.services:
            read = await client.get(f"{stack.services['query'].url}/v1/incidents/{incident_id}",
                                    headers=_headers(stack.settings, Role.ADMIN))
            assert read.status_code == 200, read.text
        return incident_id


async def test_the_canary_reaches_the_status_store(canary_ran, stack):
    dsn = stack.settings.database_url.get_secret_value()
    assert await _incident_stored(dsn, canary_ran)


async def test_no_log_line_of_any_service_holds_the_canary_name_or_text(canary_ran, stack):
    logs = stack.logs()
    assert all(logs.values()), "every service wrote log lines"
    leaks = [(name, line) for name, text in logs.items() for line in text.splitlines()
             if any(word.lower() in line.lower() for word in CANARY_WORDS)]
    assert leaks == []


async def test_no_metrics_output_of_any_service_holds_the_canary(canary_ran, stack):
    async with httpx.AsyncClient(timeout=10) as client:
        outputs = {name: (await client.get(f"{s.url}/metrics")).text for name, s in stack.services.items()}
    assert all("muster_" in text for text in outputs.values())
    leaks = [(name, word) for name, text in outputs.items() for word in CANARY_WORDS if word.lower() in text.lower()]
    assert leaks == []


async def test_every_log_line_is_one_json_object_and_intake_logs_each_event_with_its_ids(canary_ran, stack):
    logs = stack.logs()
    not_json = []
    for name, text in logs.items():
        for line in text.splitlines():
            try:
                assert isinstance(orjson.loads(line), dict)
            except (orjson.JSONDecodeError, AssertionError):
                not_json.append((name, line))
    assert not_json == []
    accepted = [orjson.loads(line) for line in logs["intake"].splitlines() if '"event accepted"' in line]
    assert {e["incident_id"] for e in accepted} == {canary_ran}
    assert all({"event_id", "topic", "partition", "offset"} <= set(e) for e in accepted)
