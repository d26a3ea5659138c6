"""Every Muster service as a real subprocess (`muster run NAME`) against the real broker and
database, with this run's topic prefix and database, on free ports, each logging to a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from services.runner import SERVICES
from services.shared.auth import Role, mint_token
from services.shared.events import Agency
from services.shared.kafka import make_producer
from services.shared.settings import REPO_ROOT, Settings
from services.supervisor import ADDRESSES
from tests.factories import POPLAR
from tests.support import free_port, wait_until


@dataclass
class Service:
    name: str
    port: int
    log: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)

    def logs(self) -> dict[str, str]:
        return {name: s.log.read_text(errors="replace") for name, s in self.services.items()}


def _wait_ready(service: Service, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"{service.name} exited with {service.process.returncode}:\n{service.log.read_text()}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{service.name} not ready on :{service.port} after {timeout}s:\n{service.log.read_text()}")


def _stop(service: Service) -> None:
    if service.process is None or service.process.poll() is not None:
        return
    service.process.send_signal(signal.SIGTERM)
    try:
        service.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait(timeout=10)


@pytest.fixture(scope="session")
def stack(test_settings: Settings, topics, database, tmp_path_factory, unique_group):
    """intake, escalation, tension, projector and query, each `muster run NAME` in a process of its own."""
    logs = tmp_path_factory.mktemp("service-logs")
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "MUSTER_TOPIC_PREFIX": test_settings.topic_prefix,
        "MUSTER_DATABASE_URL": test_settings.database_url.get_secret_value(),
        "MUSTER_PROJECTOR_CONSUMER_GROUP": f"{test_settings.topic_prefix}muster-projector-ops-{unique_group}",
        "MUSTER_LOG_LEVEL": "INFO",
        "MUSTER_LOG_FORMAT": "json",
        "MUSTER_HOME": str(logs / "home"),
        "MUSTER_KAFKA_CREDENTIALS_FILE": str(test_settings.kafka_credentials_path),  # the session broker's users
        **{f"MUSTER_{ADDRESSES[name][0].upper()}": str(port) for name, port in ports.items()},
    }
    subprocess.run([sys.executable, "-m", "services.cli", "db", "migrate"], cwd=REPO_ROOT, env=env, check=True,
                   capture_output=True)
    stack = Stack(test_settings, env)
    try:
        for name in SERVICES:
            service = Service(name, ports[name], logs / f"{name}.log")
            with open(service.log, "wb") as out:
                service.process = subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "run", name], cwd=REPO_ROOT, env=env,
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            stack.services[name] = service
        for service in stack.services.values():
            _wait_ready(service)
        yield stack
    finally:
        for service in stack.services.values():
            _stop(service)


@pytest.fixture(scope="session")
def unique_group() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


# --- the canary run ----------------------------------------------------------------------

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


async def incident_stored(dsn: str, incident_id: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("select count(*) from incidents where incident_id = $1", uuid.UUID(incident_id)))
    finally:
        await conn.close()


def metric_total(text: str, name: str) -> float:
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
        await wait_until(lambda: incident_stored(dsn, incident_id), timeout=60, what="the projector stores the canary")

        # Tension decodes only the fields it scores (docs/tension.md): the severity-9 report is not
        # poison to it, the non-JSON record is. The others read every field.
        expected_dead = {"projector": 2, "tension": 1, "escalation": 2}

        async def dead_lettered(service: str) -> bool:
            text = (await client.get(f"{stack.services[service].url}/metrics")).text
            return metric_total(text, f"muster_{service}_dead_letters_total") >= expected_dead[service]

        for service in ("projector", "tension", "escalation"):
            if service in stack.services:
                await wait_until(lambda s=service: dead_lettered(s), timeout=60, what=f"{service} dead-letters the poison")
        if "escalation" in stack.services:
            async def escalated() -> bool:
                text = (await client.get(f"{stack.services['escalation'].url}/metrics")).text
                return metric_total(text, "muster_escalation_escalations_total") >= 1

            await wait_until(escalated, timeout=60, what="the canary incident escalates")
        if "query" in stack.services:
            read = await client.get(f"{stack.services['query'].url}/v1/incidents/{incident_id}",
                                    headers=_headers(stack.settings, Role.ADMIN))
            assert read.status_code == 200, read.text
        return incident_id
