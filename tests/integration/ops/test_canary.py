"""Personal data and report free text never reach a log line or a metric.

A canary person name and canary description text go through the whole pipeline (intake ->
incidents topic -> escalation, tension, projector -> query) with every service a real
process; two poison records carrying the canary go to the dead-letter path (conftest's
`canary_ran`). Then every service's log and every /metrics output is searched for the canary.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.integration.ops.conftest import CANARY_WORDS, incident_stored

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_the_canary_reaches_the_status_store(canary_ran, stack):
    dsn = stack.settings.database_url.get_secret_value()
    assert await incident_stored(dsn, canary_ran)


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
