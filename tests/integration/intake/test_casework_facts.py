"""Casework facts through intake: a complaint is taken as the caller's agency, never another's."""

from __future__ import annotations

import json
import uuid

import pytest

from services.shared.auth import Role
from services.shared.events import Agency
from tests.integration.intake.conftest import bearer
from tests.integration.intake.test_api import record_at, report

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def complaint(**overrides) -> dict:
    body = {"event_type": "ComplaintRecorded", "complainant_key": uuid.uuid4().hex, "category": "antisocial_behaviour",
            "behaviour_at": "2026-11-20T21:00:00Z", "occurred_at": "2026-11-21T09:00:00Z", "uprn": "100023336956"}
    body.update(overrides)
    return body


async def test_a_police_officer_records_a_complaint_as_the_police_and_it_is_official_sensitive(intake, intake_settings,
                                                                                              topics):
    # The police are required at it: a complaint raises the incident to OFFICIAL-SENSITIVE, which
    # narrows who may see it, so it is recorded by an owning agency (another agency's is 403 naming
    # classification: test_write_guard.py); and once sensitive, only owners could see it to record theirs.
    raised = (await intake.post("/v1/incidents", json=report(category="antisocial_behaviour",
                                                             agencies_required=["police"]),
                                headers=bearer(intake_settings))).json()
    officer = bearer(intake_settings, Role.RESPONDER, Agency.POLICE, subject="pc-1")
    response = await intake.post(f"/v1/incidents/{raised['incident_id']}/events", json=complaint(), headers=officer)
    assert response.status_code == 202, response.text
    body = response.json()
    value = json.loads((await record_at(intake_settings, topics.name("incidents"), body["partition"], body["offset"])).value)
    assert value["agency"] == "police" and value["classification"] == "OFFICIAL-SENSITIVE"


async def test_a_complaint_naming_another_agency_is_refused_and_publishes_nothing(intake, intake_settings):
    raised = (await intake.post("/v1/incidents", json=report(category="noise"), headers=bearer(intake_settings))).json()
    officer = bearer(intake_settings, Role.ENFORCEMENT_OFFICER, Agency.HOUSING, subject="ho-1")
    response = await intake.post(f"/v1/incidents/{raised['incident_id']}/events", json=complaint(agency="police"),
                                 headers=officer)
    assert response.status_code == 403 and "agency" in response.text


async def test_a_cctv_operator_may_not_serve_a_closure_notice(intake, intake_settings):
    raised = (await intake.post("/v1/incidents", json=report(category="drugs"), headers=bearer(intake_settings))).json()
    body = {"event_type": "ClosureNoticeIssued", "uprn": "1", "duration_hours": 24, "occurred_at": "2026-11-21T09:00:00Z"}
    response = await intake.post(f"/v1/incidents/{raised['incident_id']}/events", json=body,
                                 headers=bearer(intake_settings, Role.CCTV_OPERATOR))
    assert response.status_code == 403
