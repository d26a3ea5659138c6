"""Casework on the read side, against the real PostgreSQL: who sees which case, reasons,
audits, and the housing provider who may see only its own tenants' cases."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.casework import rules
from services.casework.config import load_config
from services.casework.inputs import ASB, COMPLAINT, PREMISES, REPORT, CaseInput
from services.shared import events as ev
from services.shared.auth import Role, mint_token
from services.shared.events import Agency

pytestmark = [pytest.mark.postgres]

CONFIG = load_config()
T0 = int((datetime.now(timezone.utc) - timedelta(days=30)).timestamp())


def case_events(kind: str, subject: str, provider: str | None) -> list[ev.Event]:
    state, out = None, []
    for day in (0, 5, 10):
        op = COMPLAINT if kind == ASB else REPORT
        at = T0 + day * 86400
        item = CaseInput(kind, subject, "live", op, str(uuid.uuid4()), at=at, recorded_at=at, category="drugs",
                         agency="housing" if provider else "council", behaviour_at=at - 3600 if kind == ASB else None,
                         housing_provider=provider)
        state, produced = rules.apply(state, item, CONFIG)
        out += produced
    return [*out, rules.snapshot(state, at, CONFIG)]


def auth(settings, role: Role, agency: Agency, *, org: str | None = None, reason: str | None = "ASB case review",
         subject: str | None = None) -> dict:
    h = {"Authorization": "Bearer " + mint_token(settings, subject=subject or f"{role}-{agency}-{org}", role=role,
                                                   agency=agency, org=org)}
    if reason:
        h["X-Access-Reason"] = reason
    return h


@pytest.fixture
async def cases(store):
    poplar_key, tower_key = uuid.uuid4().hex + "p", uuid.uuid4().hex + "t"
    poplar = case_events(ASB, poplar_key, "poplar-harca")
    tower = case_events(ASB, tower_key, "tower-hamlets-homes")
    uprn = str(uuid.uuid4().int % 10**12)
    premises = case_events(PREMISES, uprn, None)
    await store.write(*poplar, *tower, *premises)
    return {
        "poplar": ev.case_id_of("asb", poplar_key), "tower": ev.case_id_of("asb", tower_key),
        "premises": ev.case_id_of("premises", uprn), "uprn": uprn,
    }


async def test_the_council_asb_team_reads_a_case_with_its_alerts_and_the_read_is_audited(client, query_settings, store,
                                                                                         cases):
    h = auth(query_settings, Role.ENFORCEMENT_OFFICER, Agency.COUNCIL, subject="asb-officer-1")
    r = await client.get(f"/v1/casework/cases/{cases['poplar']}", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["case"]["status"] == "threshold_met" and body["case"]["counted"] == 3
    assert [a["event_type"] for a in body["alerts"]] == ["AsbCaseReviewThresholdMet"]
    audit = await store.fetch("select record_kind, record_id, reason from access_audit where subject = 'asb-officer-1'")
    assert [(a["record_kind"], a["record_id"], a["reason"]) for a in audit] == [
        ("case", str(cases["poplar"]), "ASB case review")
    ]


async def test_a_housing_provider_sees_its_own_tenants_case_and_404_for_another_providers(client, query_settings,
                                                                                         cases):
    mine = auth(query_settings, Role.CONTROL_ROOM, Agency.HOUSING, org="poplar-harca")
    assert (await client.get(f"/v1/casework/cases/{cases['poplar']}", headers=mine)).status_code == 200
    other = await client.get(f"/v1/casework/cases/{cases['tower']}", headers=mine)
    missing = await client.get(f"/v1/casework/cases/{uuid.uuid4()}", headers=mine)
    assert other.status_code == 404 and missing.status_code == 404
    assert other.content == missing.content  # byte for byte: a case it may not see does not exist for it
    listed = await client.get("/v1/casework/cases", headers=mine, params={"kind": "asb"})
    ids = {c["case_id"] for c in listed.json()["items"]}
    assert str(cases["poplar"]) in ids and str(cases["tower"]) not in ids


async def test_a_housing_caller_without_an_org_and_an_uncleared_agency_see_no_case(client, query_settings, cases):
    for h in (auth(query_settings, Role.CONTROL_ROOM, Agency.HOUSING),
              auth(query_settings, Role.RESPONDER, Agency.FIRE),
              auth(query_settings, Role.CONTROL_ROOM, Agency.VOLUNTARY)):
        assert (await client.get(f"/v1/casework/cases/{cases['poplar']}", headers=h)).status_code == 404
        assert (await client.get(f"/v1/casework/premises/{cases['uprn']}", headers=h)).status_code == 404


async def test_casework_without_a_stated_reason_is_428(client, query_settings, cases):
    h = auth(query_settings, Role.SAFEGUARDING, Agency.COUNCIL, reason=None)
    assert (await client.get(f"/v1/casework/cases/{cases['premises']}", headers=h)).status_code == 428
    assert (await client.get("/v1/casework/cases", headers=h)).status_code == 428


async def test_the_premises_ledger_shows_the_rules_reached(client, query_settings, cases):
    h = auth(query_settings, Role.ANALYST, Agency.POLICE)
    r = await client.get(f"/v1/casework/premises/{cases['uprn']}", headers=h)
    assert r.status_code == 200, r.text
    assert sorted(a["rule_id"] for a in r.json()["alerts"]) == ["repeat-reports"]
    assert r.json()["case"]["route"] == "enforcement"


async def test_row_level_security_alone_hides_another_providers_case(store, cases):
    """The database's own lock, without the Python rule: the query role as a housing provider."""
    import asyncpg

    conn = await asyncpg.connect(store.dsn)
    try:
        await conn.execute("set role muster_query")
        async with conn.transaction():
            await conn.execute("select set_config('muster.role', 'control_room', true), "
                               "set_config('muster.agency', 'housing', true), set_config('muster.reason', 'x', true), "
                               "set_config('muster.org', 'poplar-harca', true)")
            seen = {r["case_id"] for r in await conn.fetch("select case_id from casework_cases")}
        assert cases["poplar"] in seen and cases["tower"] not in seen and cases["premises"] not in seen
    finally:
        await conn.close()
