"""Property-based fuzzing of the query API's own OpenAPI document (schemathesis): whatever
the parameters and headers, no request gets a 5xx. The app runs in a thread of its own
(uvicorn, own event loop), since schemathesis calls it synchronously."""

from __future__ import annotations

import threading
import time

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from services.query.app import create_app
from services.shared.auth import Role, mint_token
from services.shared.events import Agency
from services.shared.settings import Settings
from tests import factories as f
from tests.integration.query.conftest import raised
from tests.support import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
async def fuzz_data(store):
    report = f.reported(category="domestic_abuse", people=({"role": "victim"},))
    await store.write(report, raised(report))


@pytest.fixture(scope="module")
def fuzz_url(query_settings, fuzz_data):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(query_settings.model_copy(update={"query_port": port})), host="127.0.0.1", port=port,
        log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1,
    ))
    thread = threading.Thread(target=server.run, name="fuzzed-query", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the fuzzed query service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def admin_token(query_settings) -> str:
    return mint_token(query_settings, subject="fuzzer", role=Role.ADMIN, agency=Agency.COUNCIL)


# The document the app serves at /openapi.json (building the app connects to nothing).
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(path="/v1/stream")  # endless


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_query_api_fail(case, admin_token, fuzz_url):
    if case.headers is None:
        case.headers = {}
    case.headers["Authorization"] = f"Bearer {admin_token}"
    response = case.call(base_url=fuzz_url, timeout=20)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
