"""ResponderDispatched's transition from schema_version 1 to 2, against the real broker: intake
writes both versions of each dispatch, side by side, and every service reads them as one fact."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import jsonschema
import pytest

from services.escalation.facts import read_fact as escalation_reads
from services.escalation.state import fold
from services.projector.service import build_batch
from services.shared.codec import NEWER_VERSION_HEADER, header
from services.shared.schemas import SCHEMAS_DIR
from services.tension.facts import read_fact as tension_reads
from tests.integration.intake.conftest import bearer, records_of
from tests.integration.intake.test_api import report

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

AT = "2026-11-20T22:00:00Z"


def dispatch(**fields) -> dict:
    return {"event_type": "ResponderDispatched", "agency": "fire", "callsign": "F21", "occurred_at": AT, **fields}


def _validate(value: dict, version: int) -> None:
    schema = json.loads((SCHEMAS_DIR / f"ResponderDispatched.v{version}.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(value)


async def _both_versions(settings, topics, accepted: dict) -> list:
    records = await records_of(settings, topics, accepted["event_id"])
    assert len(records) == 2, records
    first, second = records
    assert (first.partition, first.offset) == (accepted["partition"], accepted["offset"])
    assert (second.partition, second.offset) == (first.partition, first.offset + 1)  # side by side
    assert first.key == second.key == accepted["incident_id"].encode()
    assert (header(first.headers, "schema_version"), header(second.headers, "schema_version")) == ("2", "1")
    assert header(second.headers, NEWER_VERSION_HEADER) == "2"
    return records


async def test_a_version_1_body_is_published_in_both_versions_each_valid_against_its_schema(intake, intake_settings, topics):
    raised = (await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))).json()
    response = await intake.post(f"/v1/incidents/{raised['incident_id']}/events", json=dispatch(eta_minutes=8),
                                 headers=bearer(intake_settings))
    assert response.status_code == 202, response.text
    v2, v1 = await _both_versions(intake_settings, topics, response.json())
    v2_value, v1_value = json.loads(v2.value), json.loads(v1.value)
    _validate(v2_value, 2)
    _validate(v1_value, 1)
    expected = datetime.fromisoformat(AT) + timedelta(minutes=8)
    assert datetime.fromisoformat(v2_value["expected_arrival_at"]) == expected
    assert v1_value["eta_minutes"] == 8


async def test_every_service_reads_the_pair_from_a_batch_as_one_dispatch(intake, intake_settings, topics):
    raised = (await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))).json()
    item = dispatch(incident_id=raised["incident_id"], expected_arrival_at="2026-11-20T22:06:00Z")
    [result] = (await intake.post("/v1/events:batch", json={"events": [item]}, headers=bearer(intake_settings))).json()["results"]
    assert result["status"] == "accepted", result
    records = await _both_versions(intake_settings, topics, result)

    # projector: the version-2 record once; the copy only advances the offset
    batch = await build_batch(records, topics.carries())
    assert [(f.event_type, f.schema_version) for f in batch.facts] == [("ResponderDispatched", 2)]
    assert batch.offsets[(records[1].topic, records[1].partition)] == records[1].offset + 1
    # escalation: either version reads as the same dispatch, and folding the copy too changes nothing
    first, copy = escalation_reads(records[0].value), escalation_reads(records[1].value)
    assert first == copy and first.agency == "fire"
    once = fold(None, first, records[0].partition, records[0].offset)
    twice = fold(once, copy, records[1].partition, records[1].offset)
    assert twice.model_copy(update={"offset": once.offset}) == once
    # tension: neither is a fact it counts, and neither is poison
    assert tension_reads(records[0].value, records[0].headers) is None
    assert tension_reads(records[1].value, records[1].headers) is None
