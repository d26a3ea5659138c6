"""Who sees what, for every role x agency x (reason stated or not) x endpoint, against an
oracle written out here independently of services/query/access.py."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from services.shared import events as ev
from services.shared.auth import Role
from services.shared.events import Agency
from tests import factories as f
from tests.integration.query.conftest import headers, raised

pytestmark = pytest.mark.postgres

T = datetime(2024, 3, 4, 10, 0, tzinfo=timezone.utc)  # apart from every other test's incidents
WINDOW = {"from": (T - timedelta(hours=1)).isoformat(), "to": (T + timedelta(hours=1)).isoformat()}
CLEARED = {Role.SAFEGUARDING, Role.ADMIN}
PEOPLE = (ev.Person(role="victim", name="Test Person", age=40),)


@dataclass(frozen=True)
class Record:
    label: str
    incident_id: uuid.UUID
    classification: str
    owners: frozenset[str]


def _reported(label: str, minutes: int, category: str, source_agency: str, required: tuple[str, ...]):
    return f.reported(
        occurred_at=T + timedelta(minutes=minutes), recorded_at=T + timedelta(minutes=minutes, seconds=1),
        category=category, severity=5, agencies_required=required,
        source=f.source(kind="control_room", id=f"matrix-{label}", agency=source_agency),
        description=f"matrix incident {label}", people=PEOPLE,
    )


REPORTS = {
    "official": _reported("official", 1, "fire", "council", ("fire",)),
    "sensitive_police": _reported("sensitive_police", 2, "domestic_abuse", "police", ("police",)),
    "sensitive_housing": _reported("sensitive_housing", 3, "safeguarding_adult", "voluntary", ("housing",)),
}
RECORDS = [
    Record(label, r.incident_id, r.classification.value, frozenset({r.source.agency.value, *(a.value for a in r.agencies_required)}))
    for label, r in REPORTS.items()
]
assert [r.classification for r in RECORDS] == ["OFFICIAL", "OFFICIAL-SENSITIVE", "OFFICIAL-SENSITIVE"]


def may_see(role: Role, agency: Agency, reason: bool, record: Record) -> bool:
    if record.classification == "OFFICIAL":
        return True
    return reason and (role in CLEARED or agency.value in record.owners)


OPERATIONAL = {Role.CONTROL_ROOM, Role.RESPONDER, Role.SAFEGUARDING, Role.ADMIN}


def may_see_people(role: Role, agency: Agency, reason: bool, record: Record) -> bool:
    """People: an operational role of an owning agency, with a stated reason, whatever the classification."""
    return reason and role in OPERATIONAL and agency.value in record.owners


CASES = [
    pytest.param(role, agency, reason, id=f"{role.value}-{agency.value}-{'reason' if reason else 'noreason'}")
    for role, agency, reason in itertools.product(Role, Agency, (True, False))
]


@pytest.fixture(scope="module")
async def seeded(store):
    await store.write(*REPORTS.values(), *(raised(r) for r in REPORTS.values()))
    return RECORDS


def _who(query_settings, role, agency, reason):
    subject = f"matrix-{uuid.uuid4().hex[:10]}"
    return subject, headers(query_settings, role, agency, subject=subject, reason="case review" if reason else None)


async def _assert_audited(store, subject: str, role, agency, expected: set[uuid.UUID], endpoint: str) -> None:
    rows = await store.audit_rows(subject)
    assert {r["record_id"] for r in rows} == {str(i) for i in expected}
    classes = {r.incident_id: r.classification for r in RECORDS}
    for row in rows:
        assert (row["role"], row["agency"], row["endpoint"], row["reason"]) == (role.value, agency.value, endpoint, "case review")
        assert row["classification"] == classes[uuid.UUID(row["record_id"])]


def _sensitive_visible(role, agency, reason) -> set[uuid.UUID]:
    return {r.incident_id for r in RECORDS if r.classification != "OFFICIAL" and may_see(role, agency, reason, r)}


@pytest.mark.parametrize("role, agency, reason", CASES)
async def test_incident_list_shows_exactly_the_permitted_records_and_audits_the_sensitive_ones(
    client, store, query_settings, seeded, role, agency, reason
):
    subject, h = _who(query_settings, role, agency, reason)
    response = await client.get("/v1/incidents", params={**WINDOW, "limit": 200}, headers=h)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    seen = {uuid.UUID(i["incident_id"]) for i in items}
    assert seen == {r.incident_id for r in RECORDS if may_see(role, agency, reason, r)}
    for item in items:
        assert item["classification"] in ("OFFICIAL", "OFFICIAL-SENSITIVE")
        assert "people" not in item
    await _assert_audited(store, subject, role, agency, _sensitive_visible(role, agency, reason), "/v1/incidents")


@pytest.mark.parametrize("role, agency, reason", CASES)
async def test_incident_detail_answers_by_clearance_redacts_people_and_audits(
    client, store, query_settings, seeded, role, agency, reason
):
    subject, h = _who(query_settings, role, agency, reason)
    for record in RECORDS:
        response = await client.get(f"/v1/incidents/{record.incident_id}", headers=h)
        if may_see(role, agency, reason, record):
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["incident"]["classification"] == record.classification
            people = may_see_people(role, agency, reason, record)
            assert (body["people"] is not None) == people
            assert body["restricted_redacted"] is (not people)
            report = next(e for e in body["timeline"] if e["event_type"] == "IncidentReported")
            assert ("people" in report["payload"]) == people
            assert [e["event_type"] for e in body["timeline"]] == ["IncidentReported", "EscalationRaised"]
            assert [e["level"] for e in body["escalations"]] == [1]
        elif not reason and record.classification != "OFFICIAL" and (role in CLEARED or agency.value in record.owners):
            assert response.status_code == 428, response.text
            assert "X-Access-Reason" in response.json()["detail"]
        else:
            assert response.status_code == 404, response.text
            assert response.json() == {"error": "not_found", "detail": "no such record"}
    with_people = {r.incident_id for r in RECORDS if may_see(role, agency, reason, r) and may_see_people(role, agency, reason, r)}
    await _assert_audited(
        store, subject, role, agency, _sensitive_visible(role, agency, reason) | with_people, "/v1/incidents/{incident_id}"
    )


@pytest.mark.parametrize("role, agency, reason", CASES)
async def test_escalations_show_only_those_of_permitted_incidents(
    client, store, query_settings, seeded, role, agency, reason
):
    subject, h = _who(query_settings, role, agency, reason)
    response = await client.get("/v1/escalations", params={"limit": 500}, headers=h)
    assert response.status_code == 200, response.text
    mine = {r.incident_id for r in RECORDS}
    seen = {uuid.UUID(e["incident_id"]) for e in response.json()["items"]} & mine
    assert seen == {r.incident_id for r in RECORDS if may_see(role, agency, reason, r)}
    await _assert_audited(store, subject, role, agency, _sensitive_visible(role, agency, reason), "/v1/escalations")


@pytest.mark.parametrize("role, agency, reason", CASES)
async def test_board_panels_show_only_permitted_incidents(client, store, query_settings, seeded, role, agency, reason):
    subject, h = _who(query_settings, role, agency, reason)
    categories = [("category", r.category.value) for r in REPORTS.values()]
    response = await client.get("/board/fragments/screen", params=categories, headers=h)
    assert response.status_code == 200, response.text
    panels = response.json()
    for record in RECORDS:
        listed = f'data-incident-id="{record.incident_id}"' in panels["list"]
        in_strip = f'data-key="{record.incident_id}"' in panels["strip"]
        assert listed == may_see(role, agency, reason, record), record.label
        assert not in_strip or listed, record.label
    assert "Test Person" not in panels["list"] + panels["strip"]
    expected_banner = "OFFICIAL-SENSITIVE" if _sensitive_visible(role, agency, reason) else "OFFICIAL"
    assert panels["banner"] == expected_banner
    await _assert_audited(store, subject, role, agency, _sensitive_visible(role, agency, reason), "/board")


async def test_an_unknown_incident_and_a_hidden_one_answer_alike(client, query_settings, seeded):
    h = headers(query_settings, Role.ANALYST, Agency.FIRE, reason="curious")
    hidden = await client.get(f"/v1/incidents/{REPORTS['sensitive_police'].incident_id}", headers=h)
    absent = await client.get(f"/v1/incidents/{uuid.uuid4()}", headers=h)
    assert (hidden.status_code, hidden.content) == (absent.status_code, absent.content) == (404, absent.content)


async def test_every_endpoint_refuses_a_caller_without_a_token(client):
    for path in ("/v1/incidents", f"/v1/incidents/{uuid.uuid4()}", "/v1/escalations", "/v1/wards",
                 "/v1/wards/E05009319/tension", "/v1/tension/return", "/v1/stats", "/v1/stream", "/board/fragments/screen",
                 f"/board/fragments/incidents/{uuid.uuid4()}", "/board/fragments/analysis"):
        response = await client.get(path)
        assert response.status_code == 401, path


async def test_a_report_linked_to_a_lead_the_reader_may_not_see_is_a_row_of_its_own_without_the_leads_id(
    client, store, query_settings
):
    """Two open fire reports linked to a police-only domestic-abuse lead: a fire analyst sees each as
    a chain of its own, and neither the lead's id nor that the two share it; the police see one chain."""
    lead = _reported("hidden_lead", 30, "domestic_abuse", "police", ("police",))
    duplicates = [_reported(f"duplicate_{n}", 31 + n, "fire", "council", ("fire",)) for n in range(2)]
    links = [f.fact(ev.IncidentLinked, d.incident_id, at=d.occurred_at + timedelta(minutes=1),
                    lead_incident_id=lead.incident_id) for d in duplicates]
    await store.write(lead, *duplicates, *links)
    params = [("category", "fire"), ("category", "domestic_abuse")]

    _, analyst = _who(query_settings, Role.ANALYST, Agency.FIRE, True)
    panels = (await client.get("/board/fragments/screen", params=params, headers=analyst)).json()
    page = panels["list"] + panels["strip"]
    assert str(lead.incident_id) not in page
    for d in duplicates:
        assert f'data-key="{d.incident_id}" data-incident-id="{d.incident_id}"' in panels["list"]

    _, police = _who(query_settings, Role.CONTROL_ROOM, Agency.POLICE, True)
    panels = (await client.get("/board/fragments/screen", params=params, headers=police)).json()
    assert f'data-key="{lead.incident_id}" data-incident-id="{lead.incident_id}"' in panels["list"]
    assert "3 reports" in panels["list"]
    assert all(f'data-incident-id="{d.incident_id}"' not in panels["list"] for d in duplicates)
