"""The tension calendar through intake: planned events and silences, who may post them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from services.shared.auth import Role
from services.shared.codec import decode
from services.shared.events import PlannedEventRegistered, TensionSilenced
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
