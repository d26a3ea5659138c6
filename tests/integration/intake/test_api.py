"""The intake API against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid

import jsonschema
import pytest
from aiokafka import TopicPartition

from services.shared.auth import Role
from services.shared.events import Agency
from services.shared.kafka import make_consumer
from services.shared.schemas import SCHEMAS_DIR
from tests.factories import POPLAR, WHITECHAPEL
from tests.integration.intake.conftest import bearer, read_topic, records_of, running_intake

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def report(**overrides) -> dict:
    body = {
        "category": "fire",
        "severity": 3,
        "location": {"ward_code": POPLAR, "lat": 51.51, "lon": -0.02},
        "description": "Smoke from a bin store",
        "occurred_at": "2026-11-20T21:55:00Z",
    }
    body.update(overrides)
    return body


def note(incident_id: str | None = None, **overrides) -> dict:
    body = {"event_type": "NoteAdded", "text": "Caller rang back", "occurred_at": "2026-11-20T21:58:00Z"}
    if incident_id:
        body["incident_id"] = incident_id
    body.update(overrides)
    return body


async def record_at(settings, topic: str, partition: int, offset: int):
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        return await consumer.getone()
    finally:
        await consumer.stop()


async def test_a_raised_incident_is_acknowledged_and_on_the_topic_as_schema_valid_json_with_headers(intake, intake_settings, topics):
    response = await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"incident_id", "event_id", "partition", "offset"}
    record = await record_at(intake_settings, topics.name("incidents"), body["partition"], body["offset"])
    value = json.loads(record.value)
    schema = json.loads((SCHEMAS_DIR / "IncidentReported.v1.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(value)
    assert record.key == body["incident_id"].encode()
    assert (value["event_id"], value["incident_id"]) == (body["event_id"], body["incident_id"])
    assert dict(record.headers) == {
        "event_type": b"IncidentReported",
        "schema_version": b"1",
        "classification": b"OFFICIAL",
        "mode": b"live",
    }
    assert value["source"] == {"kind": "control_room", "id": "op-17", "agency": "council"}


async def test_a_fact_appended_to_an_incident_lands_on_the_incidents_partition(intake, intake_settings):
    raised = (await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))).json()
    response = await intake.post(f"/v1/incidents/{raised['incident_id']}/events", json=note(), headers=bearer(intake_settings))
    assert response.status_code == 202, response.text
    appended = response.json()
    assert appended["incident_id"] == raised["incident_id"]
    assert appended["partition"] == raised["partition"] and appended["offset"] > raised["offset"]


async def test_the_same_event_id_twice_returns_the_original_result_and_publishes_once(intake, intake_settings, topics):
    event_id = str(uuid.uuid4())
    body = report(event_id=event_id)
    first = await intake.post("/v1/incidents", json=body, headers=bearer(intake_settings))
    again = await intake.post("/v1/incidents", json=body, headers=bearer(intake_settings))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    changed = await intake.post("/v1/incidents", json={**body, "severity": 5}, headers=bearer(intake_settings))
    assert changed.status_code == 409 and changed.json()["errors"][0]["field"] == "event_id"
    assert "different payload" in changed.json()["detail"]
    assert len(await records_of(intake_settings, topics, event_id)) == 1


async def test_the_same_event_id_after_an_intake_restart_returns_the_original_result(intake_settings, topics):
    event_id = str(uuid.uuid4())
    async with running_intake(intake_settings) as first_process:
        first = await first_process.post("/v1/incidents", json=report(event_id=event_id), headers=bearer(intake_settings))
    async with running_intake(intake_settings) as restarted:
        again = await restarted.post("/v1/incidents", json=report(event_id=event_id), headers=bearer(intake_settings))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert len(await records_of(intake_settings, topics, event_id)) == 1


async def test_the_same_idempotency_key_returns_the_original_result_and_publishes_once(intake, intake_settings, topics):
    headers = {**bearer(intake_settings), "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = await intake.post("/v1/incidents", json=report(), headers=headers)
    again = await intake.post("/v1/incidents", json=report(), headers=headers)
    assert again.json() == first.json()
    assert len(await records_of(intake_settings, topics, first.json()["event_id"])) == 1


async def test_an_event_id_minted_by_intake_sent_back_later_returns_the_original_result(intake, intake_settings, topics):
    import asyncpg

    from tests.support import wait_until

    first = (await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))).json()

    async def recorded() -> bool:
        conn = await asyncpg.connect(intake_settings.database_url.get_secret_value())
        try:
            return await conn.fetchval(
                "select count(*) from intake.accepted_events where event_id = $1", uuid.UUID(first["event_id"])
            ) == 1
        finally:
            await conn.close()

    await wait_until(recorded, timeout=10, what="the write-behind record of an intake-minted event_id")
    again = await intake.post("/v1/incidents", json=report(event_id=first["event_id"]), headers=bearer(intake_settings))
    assert again.json() == first
    assert len(await records_of(intake_settings, topics, first["event_id"])) == 1


async def test_an_idempotency_key_longer_than_200_characters_is_422(intake, intake_settings):
    headers = {**bearer(intake_settings), "Idempotency-Key": "k" * 201}
    response = await intake.post("/v1/incidents", json=report(), headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_concurrent_duplicates_publish_once(intake, intake_settings, topics):
    import asyncio

    event_id = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(intake.post("/v1/incidents", json=report(event_id=event_id), headers=bearer(intake_settings)) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {202} and len({r.text for r in responses}) == 1
    assert len(await records_of(intake_settings, topics, event_id)) == 1


async def test_a_missing_token_is_401(intake):
    response = await intake.post("/v1/incidents", json=report())
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_expired_token_is_401_saying_so(intake, intake_settings):
    response = await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings, ttl_s=-300))
    assert response.status_code == 401 and "expired" in response.json()["detail"]


async def test_a_role_that_may_not_post_the_event_type_is_403(intake, intake_settings):
    headers = bearer(intake_settings, role=Role.CCTV_OPERATOR)
    body = {"event_type": "MajorIncidentDeclared", "declared_by": "x-1", "agency": "police", "occurred_at": "2026-11-20T22:00:00Z"}
    response = await intake.post(f"/v1/incidents/{uuid.uuid4()}/events", json=body, headers=headers)
    assert response.status_code == 403
    assert response.json()["errors"] == [{"field": "event_type", "message": "role cctv_operator may not post MajorIncidentDeclared"}]


async def test_an_invalid_report_is_422_naming_every_bad_field(intake, intake_settings):
    body = report(severity=0, location={"ward_code": "E05999999"}, occurred_at="yesterday")
    del body["category"]
    response = await intake.post("/v1/incidents", json=body, headers=bearer(intake_settings))
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"severity", "location.ward_code", "occurred_at", "category"}


async def test_an_incident_id_that_is_not_a_uuid_is_422(intake, intake_settings):
    response = await intake.post("/v1/incidents/not-a-uuid/events", json=note(), headers=bearer(intake_settings))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "path.incident_id"


async def test_an_oversized_body_is_413(intake_settings):
    settings = intake_settings.model_copy(update={"intake_max_body_bytes": 2048})
    async with running_intake(settings) as intake:
        response = await intake.post("/v1/incidents", json=report(description="x" * 3000), headers=bearer(settings))
    assert response.status_code == 413 and response.json()["error"] == "too_large"


async def test_an_oversized_chunked_body_without_content_length_is_413(intake_settings):
    settings = intake_settings.model_copy(update={"intake_max_body_bytes": 2048})

    async def chunks():
        for _ in range(10):
            yield b" " * 1024

    async with running_intake(settings) as intake:
        response = await intake.post("/v1/incidents", content=chunks(), headers=bearer(settings))
    assert response.status_code == 413 and response.json()["error"] == "too_large"


async def test_a_batch_accepts_its_valid_items_and_rejects_the_others_each_with_its_reason(intake, intake_settings, topics):
    raised = (await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))).json()
    iid = raised["incident_id"]
    duplicate_id = str(uuid.uuid4())
    events = [
        note(iid),
        note(iid, text=""),  # rejected: empty text
        {**report(), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4()), "location": {"ward_code": WHITECHAPEL}},
        {"event_type": "EscalationRaised", "incident_id": iid},  # rejected: not an incident fact
        note(iid, event_id=duplicate_id),
        note(iid, event_id=duplicate_id),  # same event twice in one batch: one record
        note(),  # rejected: no incident_id
    ]
    response = await intake.post("/v1/events:batch", json={"events": events}, headers=bearer(intake_settings))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted", "rejected", "accepted", "accepted", "rejected"]
    assert [r["index"] for r in results] == list(range(7))
    assert results[1]["error"].startswith("events.1.text")
    assert results[3]["error"].startswith("events.3.event_type")
    assert results[6]["error"] == "events.6.incident_id: Field required"
    assert results[4] == results[5] | {"index": 4}
    assert all(r["partition"] is not None and r["error"] is None for r in results if r["status"] == "accepted")
    assert len(await records_of(intake_settings, topics, duplicate_id)) == 1


def reported_with_notes(n: int) -> list[dict]:
    """n reports (incident ids chosen here, as a partner system's batch may) and a note on each."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    return [{**report(), "event_type": "IncidentReported", "incident_id": i} for i in ids] + [note(i) for i in ids]


async def test_each_batch_result_names_the_partition_and_offset_of_its_record(intake, intake_settings, topics):
    events = reported_with_notes(20)
    results = (await intake.post("/v1/events:batch", json={"events": events}, headers=bearer(intake_settings))).json()["results"]
    assert {r["status"] for r in results} == {"accepted"}
    for result in results[::7]:
        record = await record_at(intake_settings, topics.name("incidents"), result["partition"], result["offset"])
        assert json.loads(record.value)["event_id"] == result["event_id"]
        assert record.key == result["incident_id"].encode()


async def test_a_batch_sent_again_returns_the_original_results(intake, intake_settings, topics):
    events = [{**e, "event_id": str(uuid.uuid4())} for e in reported_with_notes(3)]
    first = await intake.post("/v1/events:batch", json={"events": events}, headers=bearer(intake_settings))
    again = await intake.post("/v1/events:batch", json={"events": events}, headers=bearer(intake_settings))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert len(await records_of(intake_settings, topics, events[0]["event_id"])) == 1


async def test_retrying_only_some_items_of_a_batch_returns_their_original_results(intake, intake_settings, topics):
    """A partner retries the items it has no answer for (a 503 for those, a timeout), in a smaller
    batch, so each sits at another position: the same event_id and body is the same payload. The
    batch position made it "a different payload" (409): the write was on the topic, and the caller
    told it was not (the chaos run of 2026-12-03, after a broker kill)."""
    events = [{**e, "event_id": str(uuid.uuid4())} for e in reported_with_notes(4)]
    first = (await intake.post("/v1/events:batch", json={"events": events}, headers=bearer(intake_settings))).json()
    subset = [events[3], events[1]]
    again = await intake.post("/v1/events:batch", json={"events": subset}, headers=bearer(intake_settings))
    assert again.status_code == 200
    same = [{**r, "index": n} for n, r in enumerate([first["results"][3], first["results"][1]])]
    assert again.json()["results"] == same  # the original results (partition, offset), at their new index
    assert len(await records_of(intake_settings, topics, events[3]["event_id"])) == 1
    changed = await intake.post("/v1/events:batch", json={"events": [{**events[2], "severity": 1}]},
                                headers=bearer(intake_settings))
    assert changed.json()["results"][0]["status"] != "accepted"
    assert "different payload" in str(changed.json()["results"][0])


async def test_a_batch_over_the_limit_is_422(intake_settings):
    settings = intake_settings.model_copy(update={"intake_batch_max": 2})
    async with running_intake(settings) as intake:
        response = await intake.post("/v1/events:batch", json={"events": [note()] * 3}, headers=bearer(settings))
    assert response.status_code == 422 and "at most 2 events" in response.json()["detail"]


async def test_a_batch_item_the_role_may_not_post_is_rejected_and_the_rest_accepted(intake, intake_settings):
    raised = await intake.post("/v1/incidents", json={**report(), "agencies_required": ["fire"]},
                               headers=bearer(intake_settings))
    iid = raised.json()["incident_id"]
    events = [note(iid), {"event_type": "IncidentLinked", "incident_id": iid, "lead_incident_id": str(uuid.uuid4()), "occurred_at": "2026-11-20T22:00:00Z"}]
    headers = bearer(intake_settings, role=Role.RESPONDER, agency=Agency.FIRE, subject="fire-ops-1")
    results = (await intake.post("/v1/events:batch", json={"events": events}, headers=headers)).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert "may not post IncidentLinked" in results[1]["error"]


async def test_health_readiness_and_metrics_answer(intake, intake_settings):
    await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))
    await intake.post("/v1/incidents", json=report())
    assert (await intake.get("/healthz")).json() == {"status": "ok"}
    assert (await intake.get("/readyz")).json() == {"ready": True, "broker": True, "database": True}
    metrics = (await intake.get("/metrics")).text
    assert 'muster_intake_requests_total{method="POST",route="/v1/incidents",status="202"} 1.0' in metrics
    assert 'muster_intake_rejections_total{reason="unauthenticated"} 1.0' in metrics
    assert "muster_intake_publish_latency_seconds_count 1.0" in metrics


async def test_openapi_and_docs_are_served(intake):
    spec = (await intake.get("/openapi.json")).json()
    assert {"/v1/incidents", "/v1/incidents/{incident_id}/events", "/v1/events:batch"} <= set(spec["paths"])
    assert "NewIncident" in spec["components"]["schemas"]
    assert (await intake.get("/docs")).status_code == 200


async def test_many_large_batches_at_once_are_all_answered_and_accepted(intake, intake_settings):
    """Concurrent batches queue for the producer inside intake's bound: no 500, no reset, nothing lost.
    Single requests sent meanwhile, each claiming its event_id (an Idempotency-Key) and so waiting
    for a database look-up, are all answered within the bound (a look-up past it would be 503)."""
    batches = [{"events": reported_with_notes(500)} for _ in range(40)]
    headers = bearer(intake_settings)
    responses = await asyncio.gather(
        *(intake.post("/v1/events:batch", json=b, headers=headers) for b in batches),
        *(intake.post("/v1/incidents", json=report(), headers={**headers, "Idempotency-Key": f"single-{i}"})
          for i in range(40)),
    )
    assert [r.status_code for r in responses] == [200] * len(batches) + [202] * 40
    statuses = [r["status"] for response in responses[:40] for r in response.json()["results"]]
    assert statuses == ["accepted"] * 40_000


async def test_batches_reporting_the_same_incidents_at_once_accept_each_report_once(intake, intake_settings, topics):
    """The first report is the only report, also across batches checked and published at once."""
    incidents = [str(uuid.uuid4()) for _ in range(200)]
    batch = {"events": [{**report(), "event_type": "IncidentReported", "incident_id": i} for i in incidents]}
    responses = await asyncio.gather(
        *(intake.post("/v1/events:batch", json=batch, headers=bearer(intake_settings)) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [200] * 4
    for n, incident in enumerate(incidents):
        outcomes = sorted((r.json()["results"][n]["status"], r.json()["results"][n]["code"] or 0) for r in responses)
        assert outcomes == [("accepted", 0)] + [("rejected", 409)] * 3, incident
    reports = [r for r in await read_topic(intake_settings, topics) if (r.key or b"").decode() in set(incidents)]
    assert len(reports) == len(incidents)


@pytest.mark.parametrize("role", list(Role))
async def test_permissions_answer_from_the_same_table_that_decides_each_post(intake, intake_settings, role):
    from services.intake.permissions import MAY_POST

    response = await intake.get("/v1/permissions", headers=bearer(intake_settings, role=role, subject="op-9"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"subject": "op-9", "role": role.value, "agency": "council", "may_post": sorted(MAY_POST[role])}
    if "NoteAdded" not in body["may_post"]:
        refused = await intake.post(f"/v1/incidents/{uuid.uuid4()}/events", json=note(),
                                    headers=bearer(intake_settings, role=role))
        assert refused.status_code == 403, refused.text


async def test_permissions_need_a_token(intake):
    assert (await intake.get("/v1/permissions")).status_code == 401
