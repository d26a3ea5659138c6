"""The tension calendar through intake: planned events and silences, who may post them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from services.shared.auth import Role
from services.shared.codec import decode
from services.shared.events import Agency, PlannedEventRegistered, TensionSilenced
from tests.factories import WHITECHAPEL
from tests.integration.intake.conftest import bearer, read_topic

START = datetime.now(timezone.utc) + timedelta(days=3)


def march() -> dict:
    return {"event_type": "PlannedEventRegistered", "kind": "march", "name": "March on the high street",
            "wards": [WHITECHAPEL, "E05009327"], "route": True, "starts_at": START.isoformat(),
            "ends_at": (START + timedelta(hours=4)).isoformat(), "contentious": True,
            "expected_uplift": {"protest_or_gathering": 6}}


async def test_an_analyst_registers_a_planned_event_and_it_is_on_the_calendar_topic(intake, intake_settings, topics):
    response = await intake.post("/v1/tension/calendar", json=march(), headers=bearer(intake_settings, Role.ANALYST))
    assert response.status_code == 202, response.text
    body = response.json()
    records = [r for r in await read_topic(intake_settings, topics, "tension.calendar")
               if json.loads(r.value)["event_id"] == body["event_id"]]
    [event] = [decode(r.value) for r in records]
    assert isinstance(event, PlannedEventRegistered) and str(event.planned_event_id) == body["planned_event_id"]
    assert event.contentious and event.wards == (WHITECHAPEL, "E05009327") and event.source.id == "op-17"


async def test_an_operator_silences_a_ward_and_category_with_a_reason_and_an_end(intake, intake_settings, topics):
    until = datetime.now(timezone.utc) + timedelta(hours=2)
    body = {"event_type": "TensionSilenced", "ward_code": WHITECHAPEL, "category": "noise",
            "until": until.isoformat(), "reason": "roadworks all night, known to the police"}
    response = await intake.post("/v1/tension/calendar", json=body, headers=bearer(intake_settings))
    assert response.status_code == 202, response.text
    [record] = [r for r in await read_topic(intake_settings, topics, "tension.calendar")
                if json.loads(r.value)["event_id"] == response.json()["event_id"]]
    event = decode(record.value)
    assert isinstance(event, TensionSilenced) and event.reason.startswith("roadworks")


async def test_an_analyst_may_not_silence_and_a_silence_needs_its_reason_and_end(intake, intake_settings):
    silence = {"event_type": "TensionSilenced", "ward_code": WHITECHAPEL, "category": "noise",
               "until": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(), "reason": "works"}
    refused = await intake.post("/v1/tension/calendar", json=silence, headers=bearer(intake_settings, Role.ANALYST))
    assert refused.status_code == 403 and "TensionSilenced" in refused.text
    missing = await intake.post("/v1/tension/calendar", json={k: v for k, v in silence.items() if k != "reason"},
                                headers=bearer(intake_settings))
    assert missing.status_code == 422 and "reason" in missing.text
    backwards = {**march(), "ends_at": (START - timedelta(hours=1)).isoformat()}
    bad = await intake.post("/v1/tension/calendar", json=backwards, headers=bearer(intake_settings))
    assert bad.status_code == 422 and "ends_at" in bad.text
    incident_fact = await intake.post("/v1/tension/calendar", json={"event_type": "NoteAdded", "text": "x"},
                                      headers=bearer(intake_settings))
    assert incident_fact.status_code == 422 and "event_type" in incident_fact.text


async def calendar_records(settings, topics, *event_ids: str) -> list:
    wanted = set(event_ids)
    return [r for r in await read_topic(settings, topics, "tension.calendar") if json.loads(r.value)["event_id"] in wanted]


async def test_a_calendar_fact_is_its_callers_once_and_a_planned_event_its_agencys(intake, intake_settings, topics):
    """A replay published again, the same Idempotency-Key with another payload was accepted, and any
    analyst could cancel or rewrite another agency's planned event, any control room another's
    silence (red-team probe, 2026-12-04). Now: a replay is the first answer; another payload or
    another caller's event_id is 409 naming event_id; another agency's change or cancellation is 403
    naming the item; a cancellation of an unknown item 404; nothing refused reaches the topic."""
    police = bearer(intake_settings, Role.ANALYST, agency=Agency.POLICE, subject="police-analyst-1")
    voluntary = bearer(intake_settings, Role.ANALYST, agency=Agency.VOLUNTARY, subject="vol-analyst-1")
    keyed = {**police, "Idempotency-Key": "march-2026-12"}
    first = await intake.post("/v1/tension/calendar", json=march(), headers=keyed)
    assert first.status_code == 202, first.text
    again = await intake.post("/v1/tension/calendar", json=march(), headers=keyed)
    assert again.json() == first.json()
    other_payload = await intake.post("/v1/tension/calendar", json={**march(), "name": "Another march"}, headers=keyed)
    assert (other_payload.status_code, other_payload.json()["errors"][0]["field"]) == (409, "event_id")
    planned = first.json()["planned_event_id"]
    stolen = await intake.post("/v1/tension/calendar", headers=voluntary,
                               json={**march(), "name": "x", "event_id": first.json()["event_id"]})
    assert (stolen.status_code, stolen.json()["errors"][0]["field"]) == (409, "event_id")
    refused = []
    for body in ({"event_type": "PlannedEventCancelled", "planned_event_id": planned},
                 {**march(), "planned_event_id": planned, "contentious": False}):
        sent = {**body, "event_id": str(uuid.uuid4())}
        response = await intake.post("/v1/tension/calendar", json=sent, headers=voluntary)
        assert (response.status_code, response.json()["errors"][0]["field"]) == (403, "planned_event_id"), response.text
        refused.append(sent["event_id"])
    unknown = {"event_type": "PlannedEventCancelled", "planned_event_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4())}
    missing = await intake.post("/v1/tension/calendar", json=unknown, headers=police)
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (404, "planned_event_id")
    refused.append(unknown["event_id"])
    council_silence = {"event_type": "TensionSilenced", "ward_code": WHITECHAPEL, "category": "noise",
                       "until": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(), "reason": "works"}
    silenced = await intake.post("/v1/tension/calendar", json=council_silence, headers=bearer(intake_settings))
    assert silenced.status_code == 202, silenced.text
    taken = {**council_silence, "silence_id": silenced.json()["silence_id"], "category": "fire", "event_id": str(uuid.uuid4())}
    elsewhere = await intake.post("/v1/tension/calendar", json=taken, headers=bearer(
        intake_settings, Role.CONTROL_ROOM, agency=Agency.VOLUNTARY, subject="vol-cr-1"))
    assert (elsewhere.status_code, elsewhere.json()["errors"][0]["field"]) == (403, "silence_id")
    refused.append(taken["event_id"])
    assert await calendar_records(intake_settings, topics, *refused) == []
    [only] = await calendar_records(intake_settings, topics, first.json()["event_id"])
    assert json.loads(only.value)["name"] == "March on the high street"
    # Its own agency (and the control room) may change and cancel it; a cancelled one stays cancelled.
    update = await intake.post("/v1/tension/calendar", headers=police,
                               json={**march(), "planned_event_id": planned, "contentious": False})
    assert update.status_code == 202, update.text
    cancel = await intake.post("/v1/tension/calendar", headers=bearer(intake_settings),
                               json={"event_type": "PlannedEventCancelled", "planned_event_id": planned})
    assert cancel.status_code == 202, cancel.text
    after = await intake.post("/v1/tension/calendar", headers=police, json={**march(), "planned_event_id": planned})
    assert (after.status_code, after.json()["errors"][0]["field"]) == (409, "planned_event_id")
