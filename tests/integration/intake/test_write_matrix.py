"""Who may write what, for every role x agency x event type x incident, over HTTP against
intake with the real broker and database, compared with an oracle written out here
independently of services/intake/permissions.py and guard.py; and nothing refused reaches
the topic."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest

from services.shared.auth import Role
from services.shared.events import Agency
from tests.integration.intake.conftest import bearer, read_topic, running_intake
from tests.integration.intake.test_api import report

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

AT = "2026-11-20T22:10:00Z"
EMERGENCY_AND_COUNCIL = {"police", "fire", "ambulance", "council"}
OPERATIONAL = {Role.CONTROL_ROOM, Role.RESPONDER, Role.SAFEGUARDING, Role.ADMIN}
CLEARED = {Role.SAFEGUARDING, Role.ADMIN}
EVERY = {"IncidentUpdated", "IncidentAcknowledged", "ResponderDispatched", "ResponderArrived", "IncidentStatusChanged",
         "IncidentLinked", "NoteAdded", "MajorIncidentDeclared"}
ROLE_MAY = {  # the role table, as docs/intake.md states it
    Role.CONTROL_ROOM: EVERY,
    Role.ADMIN: EVERY,
    Role.ENFORCEMENT_OFFICER: {"IncidentUpdated", "IncidentAcknowledged", "ResponderArrived", "NoteAdded"},
    Role.CCTV_OPERATOR: {"IncidentUpdated", "NoteAdded"},
    Role.RESPONDER: EVERY - {"IncidentLinked"},
    Role.SAFEGUARDING: {"IncidentUpdated", "IncidentStatusChanged", "NoteAdded"},
    Role.ANALYST: set(),
}
def the_control_room_or_admin(role: Role, agency: Agency) -> bool:
    """The partnership's control room is the council's; another agency's control room acts as its agency."""
    return role is Role.ADMIN or (role is Role.CONTROL_ROOM and agency is Agency.COUNCIL)


INCIDENTS = {  # label -> (reporting agency, category, agencies required)
    "official": ("council", "fire", ["fire"]),
    "sensitive": ("police", "domestic_abuse", ["police", "housing"]),
}


def oracle(role: Role, agency: Agency, event_type: str, classification: str, owners: set[str]) -> int:
    if event_type not in ROLE_MAY[role]:
        return 403
    owner = agency.value in owners
    if classification == "OFFICIAL-SENSITIVE" and not (role in CLEARED or owner):
        return 404
    if event_type == "MajorIncidentDeclared":
        return 202 if role in {Role.CONTROL_ROOM, Role.RESPONDER} and agency.value in EMERGENCY_AND_COUNCIL else 403
    if event_type == "NoteAdded":
        return 202
    return 202 if the_control_room_or_admin(role, agency) or owner else 403


def field_oracle(role: Role, agency: Agency, owners: set[str]) -> int:
    """Removing an agency or changing people (on the OFFICIAL incident)."""
    if "IncidentUpdated" not in ROLE_MAY[role]:
        return 403
    owner = agency.value in owners
    if not (the_control_room_or_admin(role, agency) or owner):
        return 403  # may not update at all
    return 202 if the_control_room_or_admin(role, agency) or (owner and role in OPERATIONAL) else 403


def raise_oracle(role: Role, agency: Agency, owners: set[str]) -> int:
    """A note marked OFFICIAL-SENSITIVE on an OFFICIAL incident: it narrows who may see the incident."""
    if "NoteAdded" not in ROLE_MAY[role]:
        return 403
    return 202 if the_control_room_or_admin(role, agency) or agency.value in owners else 403  # not by clearance


def body(event_type: str, lead: str) -> dict:
    fields = {
        "IncidentUpdated": {"severity": 3},
        "IncidentAcknowledged": {},
        "ResponderDispatched": {"callsign": "M1"},
        "ResponderArrived": {"callsign": "M1"},
        "IncidentStatusChanged": {"status": "on_scene"},
        "IncidentLinked": {"lead_incident_id": lead},
        "NoteAdded": {"text": "matrix"},
        "MajorIncidentDeclared": {},
    }[event_type]
    return {"event_type": event_type, "occurred_at": AT, "event_id": str(uuid.uuid4()), **fields}


async def test_every_role_agency_event_type_and_incident_against_the_oracle(intake_settings, topics):
    async with running_intake(intake_settings) as intake:
        ids, owners, classes = {}, {}, {}

        async def reported(label: str) -> str:
            agency, category, required = INCIDENTS[label]
            response = await intake.post("/v1/incidents", json=report(category=category, agencies_required=required),
                                         headers=bearer(intake_settings, role=Role.RESPONDER, agency=Agency(agency),
                                                        subject=f"reporter-{label}"))
            assert response.status_code == 202, response.text
            return response.json()["incident_id"]

        for label, (agency, category, required) in INCIDENTS.items():
            ids[label], owners[label] = await reported(label), {agency, *required}
            classes[label] = "OFFICIAL-SENSITIVE" if category == "domestic_abuse" else "OFFICIAL"
        lead = (await intake.post("/v1/incidents", json=report(), headers=bearer(intake_settings))).json()["incident_id"]
        unknown = str(uuid.uuid4())
        accepted, refused, mismatches = set(), set(), []
        for role, agency, event_type, label in itertools.product(Role, Agency, sorted(EVERY), INCIDENTS):
            headers = bearer(intake_settings, role=role, agency=agency, subject=f"{role.value}-{agency.value}")
            sent = body(event_type, lead)
            # A link is made once (guard.py): each on an incident of its own, so the others are never duplicates.
            target = await reported(label) if event_type == "IncidentLinked" else ids[label]
            response = await intake.post(f"/v1/incidents/{target}/events", json=sent, headers=headers)
            want = oracle(role, agency, event_type, classes[label], owners[label])
            if response.status_code != want:
                mismatches.append((role.value, agency.value, event_type, label, response.status_code, want))
            (accepted if response.status_code == 202 else refused).add(sent["event_id"])
            if want == 404:  # byte for byte the answer for an incident that does not exist
                absent = await intake.post(f"/v1/incidents/{unknown}/events", json=body(event_type, lead), headers=headers)
                assert absent.content == response.content
        for role, agency in itertools.product(Role, Agency):
            headers = bearer(intake_settings, role=role, agency=agency, subject=f"{role.value}-{agency.value}")
            for change in ({"people": [{"role": "witness", "age": 30}]}, {"agencies_removed": ["fire"]}):
                sent = {"event_type": "IncidentUpdated", "occurred_at": AT, "event_id": str(uuid.uuid4()), **change}
                response = await intake.post(f"/v1/incidents/{ids['official']}/events", json=sent, headers=headers)
                want = field_oracle(role, agency, owners["official"])
                if response.status_code != want:
                    mismatches.append((role.value, agency.value, str(change), "official", response.status_code, want))
                (accepted if response.status_code == 202 else refused).add(sent["event_id"])
                if "agencies_removed" in change and response.status_code == 202:  # put it back for the next caller
                    await intake.post(f"/v1/incidents/{ids['official']}/events", headers=bearer(intake_settings),
                                      json={"event_type": "IncidentUpdated", "occurred_at": AT,
                                            "agencies_required": ["fire"]})
        for role, agency in itertools.product(Role, Agency):  # each on an OFFICIAL incident of its own
            agency_of, _, required = INCIDENTS["official"]
            fresh = (await intake.post("/v1/incidents", json=report(agencies_required=required),
                                       headers=bearer(intake_settings))).json()["incident_id"]
            sent = {"event_type": "NoteAdded", "text": "sensitive", "classification": "OFFICIAL-SENSITIVE",
                    "occurred_at": AT, "event_id": str(uuid.uuid4())}
            response = await intake.post(f"/v1/incidents/{fresh}/events", json=sent, headers=bearer(
                intake_settings, role=role, agency=agency, subject=f"{role.value}-{agency.value}"))
            want = raise_oracle(role, agency, {agency_of, *required})
            if response.status_code != want:
                mismatches.append((role.value, agency.value, "raise the classification", "official",
                                   response.status_code, want))
            (accepted if response.status_code == 202 else refused).add(sent["event_id"])
    assert mismatches == []
    on_topic = set()
    for record in await read_topic(intake_settings, topics):
        try:
            on_topic.add(json.loads(record.value)["event_id"])
        except (ValueError, KeyError, TypeError):
            continue
    assert accepted <= on_topic
    assert not refused & on_topic
