"""Property-based fuzzing of the OpenAPI spec (schemathesis) against `muster run intake`:
no 5xx, and every response conforms to the spec. Also `muster raise` through the same server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.shared.auth import Role, mint_token
from services.shared.events import Agency
from services.shared.settings import REPO_ROOT
from tests.support import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"intake exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"intake at {url} not ready after {timeout}s")


@pytest.fixture(scope="module")
def intake_server(intake_settings):
    """`muster run intake` on a free port, with this run's topics and database."""
    port = free_port()
    env = {
        **os.environ,
        "MUSTER_TOPIC_PREFIX": intake_settings.topic_prefix,
        "MUSTER_DATABASE_URL": intake_settings.database_url.get_secret_value(),
        "MUSTER_INTAKE_PORT": str(port),
        "MUSTER_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "intake"], cwd=REPO_ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url, env
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_the_openapi_spec_finds_no_server_error_and_no_response_outside_the_spec(intake_server, intake_settings, mode):
    url, _ = intake_server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    token = mint_token(intake_settings, subject="fuzz-1", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/incidents", "/v1/incidents/{incident_id}/events", "/v1/events:batch"}
    if mode is GenerationMode.NEGATIVE:  # the GETs take no input, so there is nothing to make invalid
        operations = [op for op in operations if op.method.upper() == "POST"]
    for operation in operations:

        @hypothesis.settings(
            max_examples=40,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=15)

        check()


def test_muster_token_and_muster_raise_raise_an_incident_through_the_api(intake_server):
    url, env = intake_server
    raised = subprocess.run(
        [sys.executable, "-m", "services.cli", "raise", "--category", "fire", "--severity", "3", "--ward", "E05009331",
         "--description", "Smoke from a bin store", "--url", url, "--idempotency-key", "cli-test-1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert raised.returncode == 0, raised.stderr
    result = json.loads(raised.stdout)
    assert set(result) == {"incident_id", "event_id", "partition", "offset"}

    token = subprocess.run(
        [sys.executable, "-m", "services.cli", "token", "--role", "analyst", "--agency", "police", "--subject", "an-1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    refused = subprocess.run(
        [sys.executable, "-m", "services.cli", "raise", "--category", "fire", "--severity", "3", "--ward", "E05009331",
         "--description", "Smoke", "--url", url, "--token", token],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 1 and "403" in refused.stderr and "role analyst may not post IncidentReported" in refused.stderr
