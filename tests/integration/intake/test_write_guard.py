"""Each way a partner could abuse the write side, replayed over HTTP against intake with the
real broker and database: refused with the status the issue names, nothing the attempt tried
reaches the topic, and the legitimate caller's work is untouched. Each fails on the code
before the registry (everything here was accepted then)."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from services.shared.auth import Role
from services.shared.events import Agency
from tests.integration.intake.conftest import bearer, read_topic, records_of
from tests.integration.intake.test_api import report

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

AT = "2026-11-20T22:05:00Z"


def police(settings, role=Role.RESPONDER, subject="pc-4471"):
    return bearer(settings, role=role, agency=Agency.POLICE, subject=subject)


def housing(settings, role=Role.RESPONDER, subject="housing-ops-1"):
    return bearer(settings, role=role, agency=Agency.HOUSING, subject=subject)


async def raise_one(intake, settings, headers=None, **fields) -> dict:
    response = await intake.post("/v1/incidents", json=report(**fields), headers=headers or bearer(settings))
    assert response.status_code == 202, response.text
    return response.json()


async def nothing_published(settings, topics, *event_ids: str) -> None:
    for event_id in event_ids:
        assert await records_of(settings, topics, event_id) == [], f"{event_id} reached the topic"


async def reports_of(settings, topics, incident_id: str) -> list[dict]:
    values = []
    for record in await read_topic(settings, topics):
        try:
            value = json.loads(record.value)
        except ValueError:
            continue
        if value.get("incident_id") == incident_id and value.get("event_type") == "IncidentReported":
            values.append(value)
    return values


async def test_another_agency_writing_to_a_sensitive_incident_gets_the_404_of_an_unknown_id(intake, intake_settings, topics):
    victim = await raise_one(intake, intake_settings, headers=police(intake_settings, subject="pc-dv-unit"),
                             category="domestic_abuse", agencies_required=["police"])
    attempts = []
    for body in ({"event_type": "IncidentUpdated", "agencies_required": ["police", "housing"]},
                 {"event_type": "NoteAdded", "text": "taking this over"},
                 {"event_type": "IncidentStatusChanged", "status": "closed"}):
        event_id = str(uuid.uuid4())
        attempts.append(event_id)
        hidden = await intake.post(f"/v1/incidents/{victim['incident_id']}/events",
                                   json={**body, "occurred_at": AT, "event_id": event_id}, headers=housing(intake_settings))
        unknown = await intake.post(f"/v1/incidents/{uuid.uuid4()}/events",
                                    json={**body, "occurred_at": AT, "event_id": str(uuid.uuid4())},
                                    headers=housing(intake_settings))
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.content == unknown.content
    await nothing_published(intake_settings, topics, *attempts)
    owner = await intake.post(f"/v1/incidents/{victim['incident_id']}/events",
                              json={"event_type": "NoteAdded", "text": "seen", "occurred_at": AT},
                              headers=police(intake_settings, subject="pc-dv-unit"))
    assert owner.status_code == 202


@pytest.mark.parametrize("body", [
    {"event_type": "IncidentAcknowledged"},
    {"event_type": "IncidentStatusChanged", "status": "false_alarm"},
    {"event_type": "ResponderDispatched", "callsign": "H1"},
    {"event_type": "IncidentUpdated", "severity": 1},
], ids=["ack", "stand-down", "dispatch", "downgrade"])
async def test_another_agency_cannot_suppress_an_escalation_of_an_incident_it_may_see(intake, intake_settings, topics, body):
    incident = await raise_one(intake, intake_settings, severity=5)
    event_id = str(uuid.uuid4())
    response = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                                 json={**body, "occurred_at": AT, "event_id": event_id}, headers=housing(intake_settings))
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["field"] == "event_type"
    await nothing_published(intake_settings, topics, event_id)


@pytest.mark.parametrize(("headers", "extra", "field"), [
    (lambda s: housing(s), {}, "event_type"),  # housing is not an emergency service
    (lambda s: bearer(s, role=Role.CCTV_OPERATOR, subject="cam-desk-1"), {}, "event_type"),
    (lambda s: police(s), {"declared_by": "gold-commander"}, "declared_by"),
    (lambda s: police(s), {"agency": "fire"}, "agency"),
], ids=["housing", "cctv", "someone-else", "another-agency"])
async def test_a_major_incident_declaration_cannot_be_forged(intake, intake_settings, topics, headers, extra, field):
    incident = await raise_one(intake, intake_settings, agencies_required=["police", "housing"])
    event_id = str(uuid.uuid4())
    response = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                                 json={"event_type": "MajorIncidentDeclared", "occurred_at": AT, "event_id": event_id,
                                       **extra}, headers=headers(intake_settings))
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["field"] == field
    await nothing_published(intake_settings, topics, event_id)
    real = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                             json={"event_type": "MajorIncidentDeclared", "occurred_at": AT}, headers=police(intake_settings))
    assert real.status_code == 202


async def test_the_first_report_is_the_only_report_on_every_endpoint(intake, intake_settings, topics):
    first = await raise_one(intake, intake_settings, category="noise", severity=2)
    again = {**report(category="fire", severity=5, mode="exercise", exercise="drill-7"), "event_type": "IncidentReported",
             "incident_id": first["incident_id"], "event_id": str(uuid.uuid4())}
    batch = await intake.post("/v1/events:batch", json={"events": [again]}, headers=police(intake_settings))
    [result] = batch.json()["results"]
    assert result["status"] == "rejected" and result["code"] == 409
    assert first["incident_id"] in result["error"]
    reused = await intake.post("/v1/incidents", json=report(event_id=first["event_id"], category="fire"),
                               headers=police(intake_settings))
    assert reused.status_code == 409
    await nothing_published(intake_settings, topics, again["event_id"])
    [only] = await reports_of(intake_settings, topics, first["incident_id"])
    assert (only["category"], only["mode"], only["source"]["agency"]) == ("noise", "live", "council")


async def test_a_fact_of_another_mode_is_422_naming_mode(intake, intake_settings, topics):
    incident = await raise_one(intake, intake_settings)
    event_id = str(uuid.uuid4())
    response = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                                 json={"event_type": "NoteAdded", "text": "x", "occurred_at": AT, "mode": "exercise",
                                       "event_id": event_id}, headers=bearer(intake_settings))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "mode"
    await nothing_published(intake_settings, topics, event_id)
    exercise = await raise_one(intake, intake_settings, mode="exercise", exercise="drill-7")
    filled = await intake.post(f"/v1/incidents/{exercise['incident_id']}/events",  # mode omitted: the incident's
                               json={"event_type": "NoteAdded", "text": "x", "occurred_at": AT},
                               headers=bearer(intake_settings))
    assert filled.status_code == 202
    [record] = await records_of(intake_settings, topics, filled.json()["event_id"])
    assert json.loads(record.value)["mode"] == "exercise"


async def test_no_caller_can_swallow_or_read_another_callers_report_through_its_event_id(intake, intake_settings, topics):
    victim = await raise_one(intake, intake_settings, event_id=str(uuid.uuid4()))
    stolen = await intake.post("/v1/incidents", json=report(event_id=victim["event_id"]), headers=police(intake_settings))
    assert stolen.status_code == 409 and "another caller" in stolen.json()["detail"]
    assert victim["incident_id"] not in stolen.text
    squatted = str(uuid.uuid4())  # an attacker takes an event_id first: the victim hears 409, never a fake 202
    assert (await intake.post("/v1/incidents", json=report(event_id=squatted, description="junk"),
                              headers=police(intake_settings))).status_code == 202
    late = await intake.post("/v1/incidents", json=report(event_id=squatted), headers=bearer(intake_settings))
    assert late.status_code == 409 and late.json()["errors"][0]["field"] == "event_id"
    replay = await intake.post("/v1/incidents", json=report(event_id=victim["event_id"]), headers=bearer(intake_settings))
    assert replay.status_code == 202 and replay.json() == victim


@pytest.mark.parametrize("source", [{"kind": "police", "id": "op-17"}, {"kind": "control_room", "id": "op-99"},
                                    {"kind": "control_room", "id": "op-17", "agency": "police"}])
async def test_a_body_naming_another_source_is_403_naming_source(intake, intake_settings, topics, source):
    event_id = str(uuid.uuid4())
    response = await intake.post("/v1/incidents", json=report(event_id=event_id, source=source), headers=bearer(intake_settings))
    assert response.status_code == 403 and response.json()["errors"][0]["field"] == "source"
    await nothing_published(intake_settings, topics, event_id)


async def test_the_acknowledger_is_the_caller(intake, intake_settings, topics):
    incident = await raise_one(intake, intake_settings)
    forged = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                               json={"event_type": "IncidentAcknowledged", "occurred_at": AT, "acknowledged_by": "op-1"},
                               headers=bearer(intake_settings))
    assert forged.status_code == 403 and forged.json()["errors"][0]["field"] == "acknowledged_by"
    own = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                            json={"event_type": "IncidentAcknowledged", "occurred_at": AT}, headers=bearer(intake_settings))
    [record] = await records_of(intake_settings, topics, own.json()["event_id"])
    assert json.loads(record.value)["acknowledged_by"] == "op-17"


async def test_control_characters_are_refused_naming_the_field_and_a_nul_never_stored(intake, intake_settings, topics):
    event_id = str(uuid.uuid4())
    response = await intake.post("/v1/incidents", json=report(event_id=event_id, description="smoke\u0000\u001b[2J"),
                                 headers=bearer(intake_settings))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "description"
    batch = await intake.post("/v1/events:batch", json={"events": [
        {**report(), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4()), "event_id": event_id,
         "location": {"ward_code": "E05009331", "address": "1 High St\r\nInjected: header"}}]},
        headers=bearer(intake_settings))
    assert batch.status_code == 422 and batch.json()["errors"][0]["field"] == "events.0.location.address"
    await nothing_published(intake_settings, topics, event_id)
    conn = await asyncpg.connect(intake_settings.database_url.get_secret_value())
    try:
        assert await conn.fetchval("select count(*) from intake.accepted_events where event_id = $1",
                                   uuid.UUID(event_id)) == 0
    finally:
        await conn.close()
    fine = await intake.post("/v1/incidents", json=report(description="line one\nline\ttwo"), headers=bearer(intake_settings))
    assert fine.status_code == 202


async def test_agencies_required_only_grow_and_people_change_only_for_the_privileged(intake, intake_settings, topics):
    incident = await raise_one(intake, intake_settings, agencies_required=["police", "housing"])
    path = f"/v1/incidents/{incident['incident_id']}/events"
    cctv = bearer(intake_settings, role=Role.CCTV_OPERATOR, subject="cam-desk-1")  # council: an owner, not operational
    tried = []
    for body, field in (({"agencies_required": ["police"]}, "agencies_required"),
                        ({"agencies_removed": ["housing"]}, "agencies_removed"),
                        ({"people": [{"role": "victim", "name": "A Person"}]}, "people")):
        event_id = str(uuid.uuid4())
        tried.append(event_id)
        response = await intake.post(path, json={"event_type": "IncidentUpdated", "occurred_at": AT,
                                                 "event_id": event_id, **body}, headers=cctv)
        assert response.status_code == 403 and response.json()["errors"][0]["field"] == field, response.text
    await nothing_published(intake_settings, topics, *tried)
    grown = await intake.post(path, json={"event_type": "IncidentUpdated", "occurred_at": AT,
                                          "agencies_required": ["police", "housing", "fire"]}, headers=cctv)
    assert grown.status_code == 202
    removed = await intake.post(path, json={"event_type": "IncidentUpdated", "occurred_at": AT,
                                            "agencies_required": ["police", "fire"]}, headers=bearer(intake_settings))
    assert removed.status_code == 202
    [record] = await records_of(intake_settings, topics, removed.json()["event_id"])
    assert json.loads(record.value)["agencies_removed"] == ["housing"]
    # housing is no longer an owner: a sensitive incident would now be hidden from it; this one is OFFICIAL
    late = await intake.post(path, json={"event_type": "IncidentAcknowledged", "occurred_at": AT}, headers=housing(intake_settings))
    assert late.status_code == 403


async def test_a_token_living_longer_than_twelve_hours_is_401(intake, intake_settings):
    response = await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings, ttl_s=13 * 3600))
    assert response.status_code == 401 and "lifetime" in response.json()["detail"]
