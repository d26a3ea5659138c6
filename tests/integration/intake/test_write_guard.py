"""Each way a partner could abuse the write side, replayed over HTTP against intake with the
real broker and database: refused with the status the issue names, on the single and the
batch endpoint; nothing the attempt tried reaches the topic or intake's tables (no
idempotency row, the registry record as it was); and the legitimate caller's work is
untouched. Each fails on the code before the registry (everything here was accepted then).

The classes of issue 13, by test: (a) another agency taking over a sensitive incident,
(b) suppressing an escalation, (c) forging a major-incident declaration, (d) re-reporting an
incident and a fact of another mode, (e) swallowing a report through its event_id, (f) a
source naming another identity, (g) control characters, (h) tokens (lifetime, iss, aud).
(i) people without X-Access-Reason is a read: tests/integration/query/test_access_matrix.py
(every role x agency x reason) and tests/integration/people/test_shredding.py (through
intake, the topic and the projector).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import jwt
import pytest

from services.shared.auth import Role
from services.shared.events import Agency
from tests.integration.intake.conftest import bearer, read_topic, records_of, running_intake, running_intake_app
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


async def registry_row(settings, incident_id: str) -> dict | None:
    """Intake's registry record of the incident, as stored (None: never accepted)."""
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        row = await conn.fetchrow("select * from intake.incidents where incident_id = $1", uuid.UUID(incident_id))
        return dict(row) if row is not None else None
    finally:
        await conn.close()


async def nothing_stored(settings, *event_ids: str) -> None:
    """No idempotency row of any attempt: intake recorded none of them as accepted."""
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        rows = await conn.fetch("select event_id from intake.accepted_events where event_id = any($1::uuid[])",
                                [uuid.UUID(e) for e in event_ids])
    finally:
        await conn.close()
    assert rows == [], f"{[str(r['event_id']) for r in rows]} recorded as accepted"


async def facts_of(settings, topics, incident_id: str) -> list[str]:
    """The event types on the incidents topic for this incident, in log order."""
    found = []
    for record in await read_topic(settings, topics):
        try:
            value = json.loads(record.value)
        except (TypeError, ValueError):
            continue
        if isinstance(value, dict) and value.get("incident_id") == incident_id:
            found.append(value["event_type"])
    return found


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
    """(a) Taking over another agency's sensitive incident, on the single and the batch endpoint."""
    victim = await raise_one(intake, intake_settings, headers=police(intake_settings, subject="pc-dv-unit"),
                             category="domestic_abuse", agencies_required=["police"])
    before = await registry_row(intake_settings, victim["incident_id"])
    attempts = []
    for body in ({"event_type": "IncidentUpdated", "agencies_required": ["police", "housing"]},
                 {"event_type": "IncidentUpdated", "classification": "OFFICIAL", "category": "noise"},
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
        event_id = str(uuid.uuid4())
        attempts.append(event_id)
        hidden = await intake.post("/v1/events:batch", headers=housing(intake_settings), json={"events": [
            {**body, "occurred_at": AT, "incident_id": victim["incident_id"], "event_id": event_id}]})
        unknown = await intake.post("/v1/events:batch", headers=housing(intake_settings), json={"events": [
            {**body, "occurred_at": AT, "incident_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4())}]})
        assert hidden.json()["results"][0]["code"] == 404 and hidden.content == unknown.content
    await nothing_published(intake_settings, topics, *attempts)
    await nothing_stored(intake_settings, *attempts)
    assert await registry_row(intake_settings, victim["incident_id"]) == before
    owner = await intake.post(f"/v1/incidents/{victim['incident_id']}/events",
                              json={"event_type": "NoteAdded", "text": "seen", "occurred_at": AT},
                              headers=police(intake_settings, subject="pc-dv-unit"))
    assert owner.status_code == 202
    assert await facts_of(intake_settings, topics, victim["incident_id"]) == ["IncidentReported", "NoteAdded"]


@pytest.mark.parametrize("body", [
    {"event_type": "IncidentAcknowledged"},
    {"event_type": "IncidentStatusChanged", "status": "false_alarm"},
    {"event_type": "ResponderDispatched", "callsign": "H1"},
    {"event_type": "IncidentUpdated", "severity": 1},
], ids=["ack", "stand-down", "dispatch", "downgrade"])
async def test_another_agency_cannot_suppress_an_escalation_of_an_incident_it_may_see(intake, intake_settings, topics, body):
    """(b) Standing down, acknowledging or downgrading someone else's incident: 403, on both endpoints."""
    incident = await raise_one(intake, intake_settings, severity=5)
    before = await registry_row(intake_settings, incident["incident_id"])
    event_id, batched = str(uuid.uuid4()), str(uuid.uuid4())
    response = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                                 json={**body, "occurred_at": AT, "event_id": event_id}, headers=housing(intake_settings))
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["field"] == "event_type"
    batch = await intake.post("/v1/events:batch", headers=housing(intake_settings), json={"events": [
        {**body, "occurred_at": AT, "incident_id": incident["incident_id"], "event_id": batched}]})
    [result] = batch.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", 403) and result["error"].startswith("events.0.event_type")
    await nothing_published(intake_settings, topics, event_id, batched)
    await nothing_stored(intake_settings, event_id, batched)
    assert await registry_row(intake_settings, incident["incident_id"]) == before
    assert await facts_of(intake_settings, topics, incident["incident_id"]) == ["IncidentReported"]
    ack = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",  # the control room's own work goes on
                            json={"event_type": "IncidentAcknowledged", "occurred_at": AT}, headers=bearer(intake_settings))
    assert ack.status_code == 202


@pytest.mark.parametrize(("headers", "extra", "field"), [
    (lambda s: housing(s), {}, "event_type"),  # housing is not an emergency service
    (lambda s: bearer(s, role=Role.CCTV_OPERATOR, subject="cam-desk-1"), {}, "event_type"),
    (lambda s: bearer(s, role=Role.SAFEGUARDING, agency=Agency.POLICE, subject="mash-2"), {}, "event_type"),
    (lambda s: police(s), {"declared_by": "gold-commander"}, "declared_by"),
    (lambda s: police(s), {"agency": "fire"}, "agency"),
], ids=["housing", "cctv", "safeguarding", "someone-else", "another-agency"])
async def test_a_major_incident_declaration_cannot_be_forged(intake, intake_settings, topics, headers, extra, field):
    """(c) Forging a major-incident declaration: 403 naming what is forged, on both endpoints."""
    incident = await raise_one(intake, intake_settings, agencies_required=["police", "housing"])
    event_id, batched = str(uuid.uuid4()), str(uuid.uuid4())
    declaration = {"event_type": "MajorIncidentDeclared", "occurred_at": AT, **extra}
    response = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                                 json={**declaration, "event_id": event_id}, headers=headers(intake_settings))
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["field"] == field
    batch = await intake.post("/v1/events:batch", headers=headers(intake_settings), json={"events": [
        {**declaration, "incident_id": incident["incident_id"], "event_id": batched}]})
    [result] = batch.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", 403) and result["error"].startswith(f"events.0.{field}")
    await nothing_published(intake_settings, topics, event_id, batched)
    await nothing_stored(intake_settings, event_id, batched)
    assert await facts_of(intake_settings, topics, incident["incident_id"]) == ["IncidentReported"]
    real = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                             json={"event_type": "MajorIncidentDeclared", "occurred_at": AT}, headers=police(intake_settings))
    assert real.status_code == 202
    [record] = await records_of(intake_settings, topics, real.json()["event_id"])
    assert (json.loads(record.value)["declared_by"], json.loads(record.value)["agency"]) == ("pc-4471", "police")


async def test_the_first_report_is_the_only_report_on_every_endpoint(intake, intake_settings, topics):
    """(d) Re-reporting an incident to change its mode, source and category: 409 naming it."""
    first = await raise_one(intake, intake_settings, category="noise", severity=2)
    before = await registry_row(intake_settings, first["incident_id"])
    again = {**report(category="fire", severity=5, mode="exercise", exercise="drill-7"), "event_type": "IncidentReported",
             "incident_id": first["incident_id"], "event_id": str(uuid.uuid4())}
    batch = await intake.post("/v1/events:batch", json={"events": [again]}, headers=police(intake_settings))
    [result] = batch.json()["results"]
    assert result["status"] == "rejected" and result["code"] == 409
    assert first["incident_id"] in result["error"]
    same_caller = {**again, "event_id": str(uuid.uuid4()), "mode": "live", "exercise": None}
    batch = await intake.post("/v1/events:batch", json={"events": [same_caller]}, headers=bearer(intake_settings))
    [result] = batch.json()["results"]
    assert result["code"] == 409 and first["incident_id"] in result["error"]
    reused = await intake.post("/v1/incidents", json=report(event_id=first["event_id"], category="fire"),
                               headers=police(intake_settings))
    assert reused.status_code == 409
    # Twice in one batch: the first is the report, the second is refused naming the incident.
    fresh, twice = str(uuid.uuid4()), [str(uuid.uuid4()), str(uuid.uuid4())]
    batch = await intake.post("/v1/events:batch", headers=bearer(intake_settings), json={"events": [
        {**report(category="noise"), "event_type": "IncidentReported", "incident_id": fresh, "event_id": twice[0]},
        {**report(category="fire", mode="test"), "event_type": "IncidentReported", "incident_id": fresh,
         "event_id": twice[1]}]})
    assert [(r["status"], r["code"]) for r in batch.json()["results"]] == [("accepted", None), ("rejected", 409)]
    assert fresh in batch.json()["results"][1]["error"]
    await nothing_published(intake_settings, topics, again["event_id"], same_caller["event_id"], twice[1])
    await nothing_stored(intake_settings, again["event_id"], same_caller["event_id"], twice[1])
    [only] = await reports_of(intake_settings, topics, first["incident_id"])
    assert (only["category"], only["mode"], only["source"]["agency"]) == ("noise", "live", "council")
    assert await registry_row(intake_settings, first["incident_id"]) == before
    [kept] = await reports_of(intake_settings, topics, fresh)
    assert (kept["category"], kept["mode"]) == ("noise", "live")
    assert (await registry_row(intake_settings, fresh))["mode"] == "live"


async def test_a_fact_of_another_mode_is_422_naming_mode(intake, intake_settings, topics):
    """(d) A later fact with a different mode, on both endpoints."""
    incident = await raise_one(intake, intake_settings)
    event_id, batched = str(uuid.uuid4()), str(uuid.uuid4())
    note = {"event_type": "NoteAdded", "text": "x", "occurred_at": AT, "mode": "exercise"}
    response = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                                 json={**note, "event_id": event_id}, headers=bearer(intake_settings))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "mode"
    batch = await intake.post("/v1/events:batch", headers=bearer(intake_settings), json={"events": [
        {**note, "incident_id": incident["incident_id"], "event_id": batched}]})
    [result] = batch.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", 422) and result["error"].startswith("events.0.mode")
    await nothing_published(intake_settings, topics, event_id, batched)
    await nothing_stored(intake_settings, event_id, batched)
    assert await facts_of(intake_settings, topics, incident["incident_id"]) == ["IncidentReported"]
    exercise = await raise_one(intake, intake_settings, mode="exercise", exercise="drill-7")
    filled = await intake.post(f"/v1/incidents/{exercise['incident_id']}/events",  # mode omitted: the incident's
                               json={"event_type": "NoteAdded", "text": "x", "occurred_at": AT},
                               headers=bearer(intake_settings))
    assert filled.status_code == 202
    [record] = await records_of(intake_settings, topics, filled.json()["event_id"])
    assert json.loads(record.value)["mode"] == "exercise"


async def test_no_caller_can_swallow_or_read_another_callers_report_through_its_event_id(intake, intake_settings, topics):
    """(e) Swallowing another caller's report through a chosen event_id: 409, on both endpoints."""
    victim = await raise_one(intake, intake_settings, event_id=str(uuid.uuid4()))
    stolen = await intake.post("/v1/incidents", json=report(event_id=victim["event_id"]), headers=police(intake_settings))
    assert stolen.status_code == 409 and "another caller" in stolen.json()["detail"]
    assert victim["incident_id"] not in stolen.text
    batch = await intake.post("/v1/events:batch", headers=police(intake_settings), json={"events": [
        {"event_type": "NoteAdded", "text": "mine now", "occurred_at": AT, "incident_id": victim["incident_id"],
         "event_id": victim["event_id"]}]})
    [result] = batch.json()["results"]
    assert result["code"] == 409 and "another caller" in result["error"] and result["partition"] is None
    squatted = str(uuid.uuid4())  # an attacker takes an event_id first: the victim hears 409, never a fake 202
    assert (await intake.post("/v1/incidents", json=report(event_id=squatted, description="junk"),
                              headers=police(intake_settings))).status_code == 202
    late = await intake.post("/v1/incidents", json=report(event_id=squatted), headers=bearer(intake_settings))
    assert late.status_code == 409 and late.json()["errors"][0]["field"] == "event_id"
    replay = await intake.post("/v1/incidents", json=report(event_id=victim["event_id"]), headers=bearer(intake_settings))
    assert replay.status_code == 202 and replay.json() == victim
    [record] = await records_of(intake_settings, topics, victim["event_id"])  # the victim's report, once, as sent
    assert json.loads(record.value)["source"]["id"] == "op-17"
    assert await facts_of(intake_settings, topics, victim["incident_id"]) == ["IncidentReported"]
    conn = await asyncpg.connect(intake_settings.database_url.get_secret_value())
    try:
        subject = await conn.fetchval("select subject from intake.accepted_events where event_id = $1",
                                      uuid.UUID(victim["event_id"]))
    finally:
        await conn.close()
    assert subject == "op-17"


async def test_an_idempotency_key_cannot_name_another_callers_event_through_a_slash(intake, intake_settings, topics):
    """(e) Subject `police` with Idempotency-Key `pc-X/r1` derived the event_id of subject `police/pc-X`
    with key `r1` (the parts were joined with "/" unescaped), and so took that caller's event and
    incident first: its report was 409 (red-team probe, 2026-12-06). Now each is its own."""
    squatter = police(intake_settings, subject="police")
    first = await intake.post("/v1/incidents", json=report(description="first"),
                              headers={**squatter, "Idempotency-Key": "pc-X/r1"})
    assert first.status_code == 202, first.text
    victim = police(intake_settings, subject="police/pc-X")
    mine = await intake.post("/v1/incidents", json=report(), headers={**victim, "Idempotency-Key": "r1"})
    assert mine.status_code == 202, mine.text
    assert mine.json()["event_id"] != first.json()["event_id"]
    assert mine.json()["incident_id"] != first.json()["incident_id"]
    [record] = await records_of(intake_settings, topics, mine.json()["event_id"])
    assert json.loads(record.value)["source"]["id"] == "police/pc-X"
    single = await intake.post("/v1/incidents", json=report(), headers={**victim, "Idempotency-Key": "bK/0"})
    batch = await intake.post("/v1/events:batch", headers={**victim, "Idempotency-Key": "bK"}, json={"events": [
        {**report(), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4())}]})
    [item] = batch.json()["results"]
    assert single.status_code == 202 and item["status"] == "accepted", (single.text, item)
    assert item["event_id"] != single.json()["event_id"]


@pytest.mark.parametrize("source", [{"kind": "police", "id": "op-17"}, {"kind": "control_room", "id": "op-99"},
                                    {"kind": "control_room", "id": "op-17", "agency": "police"}])
async def test_a_body_naming_another_source_is_403_naming_source(intake, intake_settings, topics, source):
    """(f) A source naming another identity, on both endpoints."""
    event_id, batched = str(uuid.uuid4()), str(uuid.uuid4())
    response = await intake.post("/v1/incidents", json=report(event_id=event_id, source=source), headers=bearer(intake_settings))
    assert response.status_code == 403 and response.json()["errors"][0]["field"] == "source"
    incident = await raise_one(intake, intake_settings)
    batch = await intake.post("/v1/events:batch", headers=bearer(intake_settings), json={"events": [
        {"event_type": "NoteAdded", "text": "x", "occurred_at": AT, "incident_id": incident["incident_id"],
         "event_id": batched, "source": source}]})
    [result] = batch.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", 403) and result["error"].startswith("events.0.source")
    await nothing_published(intake_settings, topics, event_id, batched)
    await nothing_stored(intake_settings, event_id, batched)
    assert await facts_of(intake_settings, topics, incident["incident_id"]) == ["IncidentReported"]


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
    # In a batch, the item's own rejection: the items beside it are accepted (one control character
    # refused the whole batch).
    beside = str(uuid.uuid4())
    batch = await intake.post("/v1/events:batch", json={"events": [
        {**report(), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4()), "event_id": event_id,
         "location": {"ward_code": "E05009331", "address": "1 High St\r\nInjected: header"}},
        {**report(), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4()), "event_id": beside}]},
        headers=bearer(intake_settings))
    bad, good = batch.json()["results"]
    assert (bad["status"], bad["code"]) == ("rejected", 422)
    assert bad["error"].startswith("events.0.location.address: control characters")
    assert good["status"] == "accepted" and good["event_id"] == beside
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


def signed(settings, lifetime_s: int = 3600, iat: bool = True, **claims) -> dict:
    """A token signed with the settings' HS256 key, with exactly these claims."""
    now = int(time.time())
    body = {"sub": "op-17", "role": "control_room", "agency": "council", "exp": now + lifetime_s,
            **({"iat": now} if iat else {}), **claims}
    return {"Authorization": f"Bearer {jwt.encode(body, settings.jwt_secret.get_secret_value(), algorithm='HS256')}"}


async def test_a_token_living_longer_than_twelve_hours_is_401(intake, intake_settings, topics):
    """(h) An over-long token lifetime: 401 on both endpoints, with or without iat."""
    tried = []
    for headers in (bearer(intake_settings, ttl_s=13 * 3600), signed(intake_settings, 13 * 3600, iat=False)):
        event_id = str(uuid.uuid4())
        tried.append(event_id)
        response = await intake.post("/v1/incidents", json=report(event_id=event_id), headers=headers)
        assert response.status_code == 401 and "lifetime" in response.json()["detail"]
        event_id = str(uuid.uuid4())
        tried.append(event_id)
        batch = await intake.post("/v1/events:batch", headers=headers, json={"events": [
            {**report(), "event_type": "IncidentReported", "incident_id": str(uuid.uuid4()), "event_id": event_id}]})
        assert batch.status_code == 401
    await nothing_published(intake_settings, topics, *tried)
    await nothing_stored(intake_settings, *tried)
    assert (await intake.post("/v1/incidents", json=report(), headers=signed(intake_settings, 12 * 3600))).status_code == 202


ISSUER, AUDIENCE = "https://idp.example.gov.uk/muster", "muster-intake"


@pytest.mark.parametrize("claims", [{}, {"aud": AUDIENCE}, {"iss": ISSUER}, {"iss": "https://evil.example", "aud": AUDIENCE},
                                    {"iss": ISSUER, "aud": "muster-query"}],
                         ids=["neither", "no-iss", "no-aud", "wrong-iss", "wrong-aud"])
async def test_with_an_issuer_and_audience_configured_a_token_without_them_is_401(intake_settings, topics, claims):
    """(h) iss and aud, when configured, are required and checked."""
    settings = intake_settings.model_copy(update={"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE})
    event_id = str(uuid.uuid4())
    async with running_intake(settings) as intake:
        response = await intake.post("/v1/incidents", json=report(event_id=event_id), headers=signed(settings, **claims))
        assert response.status_code == 401, response.text
        assert "invalid token" in response.json()["detail"]
        good = await intake.post("/v1/incidents", json=report(), headers=signed(settings, iss=ISSUER, aud=AUDIENCE))
        assert good.status_code == 202, good.text
    await nothing_published(settings, topics, event_id)
    await nothing_stored(settings, event_id)


@pytest.mark.parametrize("body", [
    {"event_type": "NoteAdded", "text": "seen on camera", "classification": "OFFICIAL-SENSITIVE"},
    {"event_type": "ComplaintRecorded", "complainant_key": "k" * 32, "behaviour_at": AT, "category": "noise"},
], ids=["sensitive-note", "complaint"])
@pytest.mark.parametrize("role", [Role.RESPONDER, Role.SAFEGUARDING])
async def test_another_agency_cannot_raise_an_incidents_classification_and_hide_it_from_its_control_room(
        intake, intake_settings, topics, body, role):
    """(a/b) Raising the classification narrows who may see the incident: another agency's fact that
    would raise it is 403 naming `classification`, on both endpoints, and the control room keeps its
    incident (before: 202, the incident became OFFICIAL-SENSITIVE, and the council control room's
    acknowledgement was 404; found by red-team probes, 2026-12-03). Also from another agency's
    safeguarding officer, cleared to read every sensitive incident (red-team probe, 2026-12-06)."""
    incident = await raise_one(intake, intake_settings, headers=police(intake_settings, subject="pc-1"),
                               agencies_required=["police", "fire"])
    before = await registry_row(intake_settings, incident["incident_id"])
    voluntary = bearer(intake_settings, role=role, agency=Agency.VOLUNTARY, subject=f"vol-{role.value}")
    event_id, batched = str(uuid.uuid4()), str(uuid.uuid4())
    response = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",
                                 json={**body, "occurred_at": AT, "event_id": event_id}, headers=voluntary)
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["field"] == "classification"
    batch = await intake.post("/v1/events:batch", headers=voluntary, json={"events": [
        {**body, "occurred_at": AT, "incident_id": incident["incident_id"], "event_id": batched}]})
    [result] = batch.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", 403) and result["error"].startswith("events.0.classification")
    await nothing_published(intake_settings, topics, event_id, batched)
    await nothing_stored(intake_settings, event_id, batched)
    assert await registry_row(intake_settings, incident["incident_id"]) == before
    ack = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",  # the control room still sees it
                            json={"event_type": "IncidentAcknowledged", "occurred_at": AT}, headers=bearer(intake_settings))
    assert ack.status_code == 202, ack.text
    owner = await intake.post(f"/v1/incidents/{incident['incident_id']}/events",  # an owner may raise it
                              json={**body, "occurred_at": AT}, headers=police(intake_settings, subject="pc-1"))
    assert owner.status_code == 202, owner.text
    assert (await registry_row(intake_settings, incident["incident_id"]))["classification"] == "OFFICIAL-SENSITIVE"


async def test_one_event_id_twice_in_a_batch_with_another_payload_is_409_for_the_second(intake, intake_settings, topics):
    """(e) The same event_id twice in one batch, the second with another payload (another incident,
    another fact): 409 naming event_id for the second, which is never published (before: both items
    were answered accepted with the first's result; red-team probe, 2026-12-03)."""
    incident = await raise_one(intake, intake_settings)
    other = await raise_one(intake, intake_settings)
    event_id = str(uuid.uuid4())
    batch = await intake.post("/v1/events:batch", headers=bearer(intake_settings), json={"events": [
        {"event_type": "NoteAdded", "text": "first", "occurred_at": AT, "incident_id": incident["incident_id"],
         "event_id": event_id},
        {"event_type": "IncidentStatusChanged", "status": "closed", "occurred_at": AT,
         "incident_id": other["incident_id"], "event_id": event_id},
        {"event_type": "NoteAdded", "text": "first", "occurred_at": AT, "incident_id": incident["incident_id"],
         "event_id": event_id}]})
    first, second, again = batch.json()["results"]
    assert first["status"] == "accepted" and again == {**first, "index": 2}
    assert (second["status"], second["code"]) == ("rejected", 409) and second["error"].startswith("events.1.event_id")
    assert await facts_of(intake_settings, topics, other["incident_id"]) == ["IncidentReported"]
    [record] = await records_of(intake_settings, topics, event_id)
    assert json.loads(record.value)["event_type"] == "NoteAdded"


async def test_a_caller_without_the_id_key_cannot_compute_anothers_incident_or_event_id(intake, intake_settings, topics):
    """(e) Intake derives a new incident's id from its report's event_id or Idempotency-Key, and a keyed
    request's event_id from the key. Derived without a key (name-based UUIDs, as they were), another
    caller who knew the victim's key, or its report's event_id, computed both and took them first
    through a batch naming them: the victim's report was refused (red-team probe, 2026-12-03). Under
    the deployment's id key, the same computation names other ids: the victim's reports are accepted,
    as their own incidents, and nothing the squatter sent touches them."""
    from services.shared.events import derived_event_id

    key, chosen = f"report-{uuid.uuid4()}", str(uuid.uuid4())
    voluntary = bearer(intake_settings, role=Role.RESPONDER, agency=Agency.VOLUNTARY, subject="vol-9")
    unkeyed_event_id = derived_event_id("idempotency-key", "op-17", key)  # what the squatter can compute
    guesses = [derived_event_id("incident", unkeyed_event_id), derived_event_id("incident", uuid.UUID(chosen))]
    taken = await intake.post("/v1/events:batch", headers=voluntary, json={"events": [
        {**report(description="junk"), "event_type": "IncidentReported", "incident_id": str(g)} for g in guesses] + [
        {"event_type": "NoteAdded", "text": "squatting", "occurred_at": AT, "incident_id": str(guesses[0]),
         "event_id": str(unkeyed_event_id)}]})
    assert [r["status"] for r in taken.json()["results"]] == ["accepted"] * 3, taken.text
    by_key = await intake.post("/v1/incidents", json=report(), headers={**bearer(intake_settings), "Idempotency-Key": key})
    by_id = await intake.post("/v1/incidents", json=report(event_id=chosen), headers=bearer(intake_settings))
    assert (by_key.status_code, by_id.status_code) == (202, 202), (by_key.text, by_id.text)
    assert by_key.json()["event_id"] != str(unkeyed_event_id)
    assert {by_key.json()["incident_id"], by_id.json()["incident_id"]}.isdisjoint(str(g) for g in guesses)
    for answer in (by_key, by_id):
        assert await facts_of(intake_settings, topics, answer.json()["incident_id"]) == ["IncidentReported"]


async def test_a_report_whose_derived_incident_id_another_caller_took_is_told_to_send_anew(intake, intake_settings, topics):
    """(e) Should another report name the incident intake derives for a report (only a holder of the
    deployment's id key can compute it: this test does), the report is no repeat of it: 409 naming the
    field to send anew (it said "already reported", which a client may take for its own earlier
    report), and sent again with a new key it is accepted (red-team probe, 2026-12-03)."""
    from services.shared import ids

    derived = ids.from_settings(intake_settings)
    key, chosen = f"report-{uuid.uuid4()}", str(uuid.uuid4())
    voluntary = bearer(intake_settings, role=Role.RESPONDER, agency=Agency.VOLUNTARY, subject="vol-9")
    for squatted in (derived.incident_id_for(derived.event_id_for_key("op-17", key)),
                     derived.incident_id_for(uuid.UUID(chosen))):
        taken = await intake.post("/v1/events:batch", headers=voluntary, json={"events": [
            {**report(description="junk"), "event_type": "IncidentReported", "incident_id": str(squatted)}]})
        assert taken.json()["results"][0]["status"] == "accepted"
    by_key = await intake.post("/v1/incidents", json=report(), headers={**bearer(intake_settings), "Idempotency-Key": key})
    assert by_key.status_code == 409 and by_key.json()["errors"][0]["field"] == "header.Idempotency-Key", by_key.text
    assert "send this report again with a new one" in by_key.json()["detail"]
    by_id = await intake.post("/v1/incidents", json=report(event_id=chosen), headers=bearer(intake_settings))
    assert by_id.status_code == 409 and by_id.json()["errors"][0]["field"] == "event_id", by_id.text
    await nothing_stored(intake_settings, chosen, str(derived.event_id_for_key("op-17", key)))
    anew = await intake.post("/v1/incidents", json=report(),
                             headers={**bearer(intake_settings), "Idempotency-Key": f"{key}-2"})
    assert anew.status_code == 202
    assert await facts_of(intake_settings, topics, anew.json()["incident_id"]) == ["IncidentReported"]


async def test_a_report_cannot_ride_on_the_event_id_of_an_earlier_refused_item_of_its_batch(
        intake, intake_settings, topics):
    """(d, e) A batch whose first item with an event_id is refused (403, 404) and whose later item
    with the same event_id reports an incident: the later item made no claim of its own, so it was
    published as a second report of another agency's sensitive incident it may not see, or as a
    report whose registry record was never written (which anyone's later report then took; red-team
    probe, 2026-12-04). It is that event: the same refusal for the same payload, 409 naming event_id
    for another."""
    victim = await raise_one(intake, intake_settings, headers=police(intake_settings), category="domestic_abuse")
    official = await raise_one(intake, intake_settings)
    before = await registry_row(intake_settings, victim["incident_id"])
    hostile = bearer(intake_settings, role=Role.CCTV_OPERATOR, agency=Agency.VOLUNTARY, subject="cam-hostile")
    onto_victim, onto_new, twice = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    unknown, new_incident = str(uuid.uuid4()), str(uuid.uuid4())
    refused_note = {"event_type": "NoteAdded", "text": "x", "occurred_at": AT, "incident_id": unknown,
                    "event_id": twice}
    batch = await intake.post("/v1/events:batch", headers=hostile, json={"events": [
        {"event_type": "IncidentUpdated", "severity": 1, "occurred_at": AT, "incident_id": official["incident_id"],
         "event_id": onto_victim},
        {**report(description="hostile second report"),
         "event_type": "IncidentReported", "incident_id": victim["incident_id"], "event_id": onto_victim},
        {"event_type": "NoteAdded", "text": "x", "occurred_at": AT, "incident_id": unknown, "event_id": onto_new},
        {**report(), "event_type": "IncidentReported", "incident_id": new_incident, "event_id": onto_new},
        refused_note, refused_note]})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [(r["status"], r["code"]) for r in results] == [("rejected", 403), ("rejected", 409), ("rejected", 404),
                                                           ("rejected", 409), ("rejected", 404), ("rejected", 404)]
    assert results[1]["error"].startswith("events.1.event_id") and results[3]["error"].startswith("events.3.event_id")
    assert results[5]["error"] == results[4]["error"].replace("events.4.", "events.5.")
    await nothing_published(intake_settings, topics, onto_victim, onto_new, twice)
    await nothing_stored(intake_settings, onto_victim, onto_new, twice)
    [only] = await reports_of(intake_settings, topics, victim["incident_id"])
    assert only["source"]["agency"] == "police"
    assert await registry_row(intake_settings, victim["incident_id"]) == before
    assert await registry_row(intake_settings, new_incident) is None
    # The incident nobody reported is still anyone's to report first; the victim's own work goes on.
    first = await intake.post("/v1/events:batch", headers=bearer(intake_settings), json={"events": [
        {**report(), "event_type": "IncidentReported", "incident_id": new_incident, "event_id": str(uuid.uuid4())}]})
    assert first.json()["results"][0]["status"] == "accepted"
    note = await intake.post(f"/v1/incidents/{victim['incident_id']}/events", headers=police(intake_settings),
                             json={"event_type": "NoteAdded", "text": "still mine", "occurred_at": AT})
    assert note.status_code == 202, note.text


async def test_links_and_a_finished_incidents_state_cannot_be_used_to_stop_its_escalation(intake, intake_settings, topics):
    """(b) Escalation stops a linked incident's deadlines, keeps its first link and ignores a finished
    incident: a second link, a chain closed into a cycle, a finished incident's status
    moved back or a declaration on it were all accepted (red-team probe, 2026-12-04). 409 naming the
    field; nothing reaches the topic; the registry keeps the first link."""
    a, b, c, d = [(await raise_one(intake, intake_settings))["incident_id"] for _ in range(4)]
    headers = bearer(intake_settings)

    async def post(incident: str, **fields):
        return await intake.post(f"/v1/incidents/{incident}/events", headers=headers,
                                 json={"occurred_at": AT, "event_id": str(uuid.uuid4()), **fields})

    assert (await post(a, event_type="IncidentLinked", lead_incident_id=b)).status_code == 202
    assert (await post(c, event_type="IncidentStatusChanged", status="false_alarm")).status_code == 202
    attempts = [
        (a, {"event_type": "IncidentLinked", "lead_incident_id": d}, "lead_incident_id"),  # a second link
        (b, {"event_type": "IncidentLinked", "lead_incident_id": a.upper()}, "lead_incident_id"),  # a cycle
        (c, {"event_type": "IncidentStatusChanged", "status": "open"}, "status"),  # moved back
        (c, {"event_type": "MajorIncidentDeclared"}, "incident_id"),
        (a, {"event_type": "MajorIncidentDeclared"}, "incident_id"),  # a duplicate: declare on its lead
    ]
    refused_ids = []
    for incident, fields, field in attempts:
        event_id = str(uuid.uuid4())
        response = await intake.post(f"/v1/incidents/{incident}/events", headers=headers,
                                     json={"occurred_at": AT, "event_id": event_id, **fields})
        assert (response.status_code, response.json()["errors"][0]["field"]) == (409, field), (fields, response.text)
        batch = await intake.post("/v1/events:batch", headers=headers, json={"events": [
            {"occurred_at": AT, "event_id": (batch_id := str(uuid.uuid4())), "incident_id": incident, **fields}]})
        [result] = batch.json()["results"]
        assert (result["code"], result["error"].split(":")[0]) == (409, f"events.0.{field}"), result
        refused_ids += [event_id, batch_id]
    await nothing_published(intake_settings, topics, *refused_ids)
    await nothing_stored(intake_settings, *refused_ids)
    assert (await registry_row(intake_settings, a))["lead_incident_id"] == uuid.UUID(b)
    assert await facts_of(intake_settings, topics, d) == ["IncidentReported"]
    # The lead itself goes on: a live incident may still be declared, and d linked to b.
    assert (await post(b, event_type="MajorIncidentDeclared")).status_code == 202
    assert (await post(d, event_type="IncidentLinked", lead_incident_id=b)).status_code == 202


async def test_another_agencys_control_room_acts_as_its_agency_not_as_the_partnerships(intake, intake_settings, topics):
    """(a, b) A control_room token of a voluntary partner had the council control room's powers on a
    police incident: it raised it to OFFICIAL-SENSITIVE (hiding it from the council's control room),
    removed an agency and stood it down (red-team probe, 2026-12-04). It acts as its agency: 403."""
    incident = (await raise_one(intake, intake_settings, headers=police(intake_settings),
                                agencies_required=["police", "fire"]))["incident_id"]
    voluntary = bearer(intake_settings, role=Role.CONTROL_ROOM, agency=Agency.VOLUNTARY, subject="vol-cr-1")
    attempts = [({"event_type": "NoteAdded", "text": "x", "classification": "OFFICIAL-SENSITIVE"}, "classification"),
                ({"event_type": "IncidentUpdated", "agencies_required": ["police"]}, "event_type"),
                ({"event_type": "IncidentStatusChanged", "status": "unfounded"}, "event_type"),
                ({"event_type": "IncidentAcknowledged"}, "event_type")]
    refused_ids = []
    for fields, field in attempts:
        sent = {"occurred_at": AT, "event_id": str(uuid.uuid4()), **fields}
        response = await intake.post(f"/v1/incidents/{incident}/events", json=sent, headers=voluntary)
        assert (response.status_code, response.json()["errors"][0]["field"]) == (403, field), response.text
        refused_ids.append(sent["event_id"])
    await nothing_published(intake_settings, topics, *refused_ids)
    row = await registry_row(intake_settings, incident)
    assert (row["classification"], sorted(row["agencies_required"]), row["terminal"]) == (
        "OFFICIAL", ["fire", "police"], False)
    # It may still add a note, as any agency may; the council's control room still acknowledges.
    note = {"event_type": "NoteAdded", "text": "seen from the voluntary control room", "occurred_at": AT}
    assert (await intake.post(f"/v1/incidents/{incident}/events", json=note, headers=voluntary)).status_code == 202
    ack = await intake.post(f"/v1/incidents/{incident}/events", headers=bearer(intake_settings),
                            json={"event_type": "IncidentAcknowledged", "occurred_at": AT})
    assert ack.status_code == 202, ack.text


async def test_facts_sent_at_once_are_never_both_checked_against_the_state_before_the_other(
        intake, intake_settings, topics):
    """(b) Two links sent at once, X to Y and Y to X, were both accepted (a cycle: escalation stood
    both level-3 escalations down), as were two leads for one duplicate, or a close beside a
    declaration (red-team probe, 2026-12-04): each was checked against the registry as it was before
    the other. Now at most one of each pair is accepted; the other is 409, to be sent again."""
    headers = bearer(intake_settings)

    async def post(incident: str, **fields):
        return await intake.post(f"/v1/incidents/{incident}/events", headers=headers,
                                 json={"occurred_at": AT, "event_id": str(uuid.uuid4()), **fields})

    async def batch(incident: str, **fields):
        response = await intake.post("/v1/events:batch", headers=headers, json={"events": [
            {"occurred_at": AT, "event_id": str(uuid.uuid4()), "incident_id": incident, **fields}]})
        [result] = response.json()["results"]
        return 202 if result["status"] == "accepted" else result["code"]

    for attempt in range(6):
        x, y, z = [(await raise_one(intake, intake_settings))["incident_id"] for _ in range(3)]
        single = attempt % 2 == 0  # single against single, then batch against single
        first = post(x, event_type="IncidentLinked", lead_incident_id=y)
        cycle, lead = await asyncio.gather(first, (post if single else batch)(
            y, event_type="IncidentLinked", lead_incident_id=x))
        codes = sorted(getattr(r, "status_code", r) for r in (cycle, lead))
        assert codes[0] == 202 and codes[1] == 409, codes
        rows = [await registry_row(intake_settings, i) for i in (x, y)]
        assert [r["lead_incident_id"] for r in rows].count(None) == 1  # one link, no cycle
        two_leads = await asyncio.gather(post(z, event_type="IncidentLinked", lead_incident_id=x),
                                         post(z, event_type="IncidentLinked", lead_incident_id=y))
        assert sum(r.status_code == 202 for r in two_leads) <= 1, [r.text for r in two_leads]
        w = (await raise_one(intake, intake_settings))["incident_id"]
        close, declare = await asyncio.gather(post(w, event_type="IncidentStatusChanged", status="closed"),
                                              (post if single else batch)(w, event_type="MajorIncidentDeclared"))
        codes = sorted(getattr(r, "status_code", r) for r in (close, declare))
        assert codes[1] == 409, codes  # never a declaration accepted beside the close that finished it


async def test_an_event_id_intake_just_minted_is_that_events_at_once(intake, intake_settings, topics):
    """(e) A fact whose event_id intake minted is answered before its idempotency row is written
    (write-behind): a batch naming that id with another payload at once was a first claim, and a
    second event went out under the id (red-team round 2, 2026-12-04). Now 409 naming event_id."""
    incident = (await raise_one(intake, intake_settings))["incident_id"]
    note = await intake.post(f"/v1/incidents/{incident}/events", headers=bearer(intake_settings),
                             json={"event_type": "NoteAdded", "text": "first", "occurred_at": AT})
    assert note.status_code == 202, note.text
    event_id = note.json()["event_id"]
    batch = await intake.post("/v1/events:batch", headers=bearer(intake_settings), json={"events": [
        {"event_type": "NoteAdded", "text": "another", "occurred_at": AT, "incident_id": incident,
         "event_id": event_id}]})
    [result] = batch.json()["results"]
    assert (result["code"], result["error"].split(":")[0]) == (409, "events.0.event_id"), result
    [record] = await records_of(intake_settings, topics, event_id)
    assert json.loads(record.value)["text"] == "first"


async def test_another_agencys_control_room_records_only_its_own_agencys_dispatches_and_arrivals(
        intake, intake_settings, topics):
    """(f) A voluntary partner's control room, on an incident it reported, logged police and fire
    arrivals and a police dispatch: 202, which escalation takes as those agencies on scene (red-team
    probe, 2026-12-06). It records its own agency's: another is 403 naming `agency`; the council's
    control room still records any agency's."""
    voluntary = bearer(intake_settings, role=Role.CONTROL_ROOM, agency=Agency.VOLUNTARY, subject="vol-cr-2")
    incident = (await raise_one(intake, intake_settings, headers=voluntary, agencies_required=["police"]))["incident_id"]
    attempts = [{"event_type": "ResponderArrived", "agency": "police", "callsign": "P1"},
                {"event_type": "ResponderArrived", "agency": "fire", "callsign": "E21"},
                {"event_type": "ResponderDispatched", "agency": "police", "callsign": "P1",
                 "expected_arrival_at": "2026-11-20T22:15:00Z"}]
    refused = []
    for fields in attempts:
        sent = {"occurred_at": AT, "event_id": str(uuid.uuid4()), **fields}
        response = await intake.post(f"/v1/incidents/{incident}/events", json=sent, headers=voluntary)
        assert (response.status_code, response.json()["errors"][0]["field"]) == (403, "agency"), response.text
        refused.append(sent["event_id"])
    batched = str(uuid.uuid4())
    batch = await intake.post("/v1/events:batch", headers=voluntary, json={"events": [
        {**attempts[0], "occurred_at": AT, "incident_id": incident, "event_id": batched}]})
    [result] = batch.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", 403) and result["error"].startswith("events.0.agency")
    await nothing_published(intake_settings, topics, *refused, batched)
    await nothing_stored(intake_settings, *refused, batched)
    own = await intake.post(f"/v1/incidents/{incident}/events", headers=voluntary, json={
        "event_type": "ResponderArrived", "callsign": "V1", "occurred_at": AT})
    assert own.status_code == 202, own.text
    council = await intake.post(f"/v1/incidents/{incident}/events", headers=bearer(intake_settings), json={
        "event_type": "ResponderArrived", "agency": "police", "callsign": "P1", "occurred_at": AT})
    assert council.status_code == 202, council.text
    assert await facts_of(intake_settings, topics, incident) == ["IncidentReported", "ResponderArrived", "ResponderArrived"]


async def test_a_second_report_reusing_an_event_id_in_flight_leaves_that_events_claim(intake_settings, topics):
    """(e) A batch item reusing the event_id of another request in flight in the same process, as a
    report of an incident already reported, was refused (409), and its refusal gave up the claim it
    had read as its own: the in-flight request's. A third request could then publish a second event
    under that event_id (red-team reading, 2026-12-06). The refusal now leaves a claim it did not make."""
    async with running_intake_app(intake_settings) as (app, client):
        incident = (await raise_one(client, intake_settings))["incident_id"]
        in_flight = uuid.uuid4()  # the victim's note, claimed by this process, not yet published
        assert await app.state.store.claim(in_flight, "op-17", b"d" * 16, None) is None
        attacker = police(intake_settings)
        batch = await client.post("/v1/events:batch", headers=attacker, json={"events": [
            {**report(), "event_type": "IncidentReported", "incident_id": incident, "event_id": str(in_flight)}]})
        [result] = batch.json()["results"]
        assert (result["status"], result["code"]) == ("rejected", 409), result
        conn = await asyncpg.connect(intake_settings.database_url.get_secret_value())
        try:
            subject = await conn.fetchval("select subject from intake.pending_events where event_id = $1", in_flight)
        finally:
            await conn.close()
        assert subject == "op-17"  # the victim's claim stands
        third = await client.post("/v1/events:batch", headers=attacker, json={"events": [
            {"event_type": "NoteAdded", "text": "mine", "occurred_at": AT, "incident_id": incident,
             "event_id": str(in_flight)}]})
        [result] = third.json()["results"]
        assert result["status"] == "rejected" and result["code"] == 409, result
        await nothing_published(intake_settings, topics, str(in_flight))
