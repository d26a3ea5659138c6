"""The read API's behaviour: filters, keyset pages while incidents arrive, one incident with
its timeline and links, wards and tension, the weekly return, stats, health and metrics."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.shared import events as ev
from services.shared.auth import Role
from services.shared.events import Agency
from tests import factories as f
from tests.integration.query.conftest import headers, raised

pytestmark = pytest.mark.postgres

T = datetime(2024, 7, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def h(query_settings):
    return headers(query_settings, Role.CONTROL_ROOM, Agency.COUNCIL)


def _window(start: datetime, hours: int = 24) -> dict:
    return {"from": start.isoformat(), "to": (start + timedelta(hours=hours)).isoformat()}


async def test_pages_stay_correct_while_new_incidents_arrive(client, store, h):
    start = T
    first = [f.reported(occurred_at=start + timedelta(minutes=i), category="noise") for i in range(25)]
    await store.write(*first)
    seen: list[str] = []
    response = await client.get("/v1/incidents", params={**_window(start), "limit": 10}, headers=h)
    page = response.json()
    seen += [i["incident_id"] for i in page["items"]]
    # newer incidents arrive, and one with the same occurred_at as the page's last row
    tie = page["items"][-1]["occurred_at"]
    await store.write(*(f.reported(occurred_at=start + timedelta(minutes=30 + i)) for i in range(5)))
    while page["next_cursor"]:
        page = (await client.get("/v1/incidents", params={**_window(start), "limit": 10, "cursor": page["next_cursor"]},
                                 headers=h)).json()
        seen += [i["incident_id"] for i in page["items"]]
    older = [str(r.incident_id) for r in sorted(first, key=lambda r: (r.occurred_at, r.incident_id), reverse=True)]
    assert seen == older and len(set(seen)) == 25
    assert tie is not None


async def test_ties_on_occurred_at_are_ordered_by_incident_id_across_pages(client, store, h):
    at = T + timedelta(days=1)
    same = [f.reported(occurred_at=at) for _ in range(7)]
    await store.write(*same)
    seen, cursor = [], None
    while True:
        params = {**_window(at - timedelta(minutes=1), 1), "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/incidents", params=params, headers=h)).json()
        seen += [i["incident_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted((str(r.incident_id) for r in same), reverse=True)


async def test_filters_narrow_by_ward_status_category_severity_agency_and_mode(client, store, h):
    at = T + timedelta(days=2)
    a = f.reported(occurred_at=at, location=ev.Location(ward_code=f.POPLAR), severity=4, category="violence",
                   agencies_required=("police",))
    b = f.reported(occurred_at=at, location=ev.Location(ward_code=f.WHITECHAPEL), severity=2, category="noise")
    c = f.reported(occurred_at=at, location=ev.Location(ward_code=f.POPLAR), severity=1, category="noise",
                   mode="exercise")
    ack = f.fact(ev.IncidentAcknowledged, b.incident_id, at + timedelta(minutes=1), acknowledged_by="op-1")
    await store.write(a, b, c, ack)
    w = _window(at - timedelta(minutes=1), 1)

    async def ids(**params):
        r = await client.get("/v1/incidents", params={**w, **params}, headers=h)
        assert r.status_code == 200, r.text
        return {i["incident_id"] for i in r.json()["items"]}

    A, B, C = str(a.incident_id), str(b.incident_id), str(c.incident_id)
    assert await ids(ward=f.POPLAR) == {A}  # live by default: the exercise report only when asked for
    assert await ids(ward=f.POPLAR, mode="exercise") == {C}
    assert await ids(status="acknowledged") == {B}
    assert await ids(category=["noise", "fire"]) == {B}
    assert await ids(severity_min=2, severity_max=3) == {B}
    assert await ids(agency="police") == {A}
    assert await ids(mode="exercise") == {C}


async def test_bad_parameters_are_named(client, h):
    for params, field in (({"cursor": "nonsense"}, "cursor"), ({"severity_min": 9}, "severity_min"),
                          ({"from": "2024-01-01T00:00:00"}, "from"), ({"status": "lost"}, "status")):
        r = await client.get("/v1/incidents", params=params, headers=h)
        assert r.status_code == 422 and field in r.json()["detail"], (params, r.text)


async def test_one_incident_has_its_timeline_in_event_time_its_escalations_and_its_links(client, store, h):
    at = T + timedelta(days=3)
    lead = f.reported(occurred_at=at)
    duplicate = f.reported(occurred_at=at + timedelta(minutes=2))
    late_note = f.fact(ev.NoteAdded, lead.incident_id, at + timedelta(minutes=1), text="arrived late")
    link = f.fact(ev.IncidentLinked, duplicate.incident_id, at + timedelta(minutes=3), lead_incident_id=lead.incident_id)
    ack = f.fact(ev.IncidentAcknowledged, lead.incident_id, at + timedelta(minutes=5), acknowledged_by="op-1")
    await store.write(lead, ack, duplicate, link)
    await store.write(late_note)
    body = (await client.get(f"/v1/incidents/{lead.incident_id}", headers=h)).json()
    assert [e["event_type"] for e in body["timeline"]] == ["IncidentReported", "NoteAdded", "IncidentAcknowledged"]
    assert body["incident"]["status"] == "acknowledged"
    assert [i["incident_id"] for i in body["linked"]] == [str(duplicate.incident_id)]
    dup = (await client.get(f"/v1/incidents/{duplicate.incident_id}", headers=h)).json()
    assert [i["incident_id"] for i in dup["linked"]] == [str(lead.incident_id)]


async def test_wards_list_every_ward_with_its_tension_and_history(client, store, h):
    change = ev.TensionLevelChanged(
        ward_code=f.BOW_EAST, ward_name="Bow East", old_level="normal", new_level="elevated", score=2.5, observed=5,
        expected=2, window="24h/1h", window_start=T, window_end=T + timedelta(hours=24),
        occurred_at=T + timedelta(hours=24), source=f.source(kind="system", id="tension", agency=None),
        top_contributors=({"category": "hate_incident", "weighted": 3.0, "count": 2},),
    )
    await store.write(change)
    wards = (await client.get("/v1/wards", headers=h)).json()
    assert len(wards) == 20
    bow = next(w for w in wards if w["code"] == f.BOW_EAST)
    assert bow["tension"]["level"] == "elevated"
    tension = (await client.get(f"/v1/wards/{f.BOW_EAST}/tension", headers=h)).json()
    assert tension["now"]["level"] == "elevated" and tension["history"][0]["event_id"] == str(change.event_id)
    assert (await client.get("/v1/wards/E00000000/tension", headers=h)).status_code == 404
    week = (await client.get("/v1/tension/return", params={"week": (T + timedelta(hours=24)).date().isoformat()},
                             headers=h)).json()
    row = next(w for w in week["wards"] if w["ward_code"] == f.BOW_EAST)
    assert (row["level"], row["trend"], row["changes"]) == ("elevated", "rising", 1)
    assert row["top_indicators"][0]["category"] == "hate_incident"
    assert week["week_start"] == "2024-07-01"


async def test_stats_count_by_ward_category_and_hour_of_week(client, store, h):
    at = datetime(2024, 9, 2, 21, 30, tzinfo=timezone.utc)  # a Monday, 22:30 in London (BST)
    await store.write(*(f.reported(occurred_at=at, category="drugs") for _ in range(3)))
    stats = (await client.get("/v1/stats", params=_window(at - timedelta(minutes=1), 1), headers=h)).json()
    assert stats["total"] == 3
    assert stats["by_category"] == [{"key": "drugs", "count": 3}]
    assert stats["by_ward"] == [{"key": f.BOW_EAST, "count": 3}]
    assert stats["by_hour_of_week"] == [{"day_of_week": 1, "hour": 22, "count": 3}]


async def test_health_readiness_openapi_and_metrics(client, h):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/incidents", "/v1/incidents/{incident_id}", "/v1/stream", "/v1/tension/return"} <= set(spec["paths"])
    await client.get(f"/v1/incidents/{uuid.uuid4()}", headers=h)
    text = (await client.get("/metrics")).text
    assert 'muster_query_requests_total{method="GET",route="/v1/incidents/{incident_id}",status="404"}' in text
    assert "muster_query_audit_rows_total" in text


async def test_an_incident_another_names_is_shown_only_to_who_may_see_it(client, store, query_settings):
    """A council incident's escalation named a police OFFICIAL-SENSITIVE report correlated into it
    (id, distance, interval), and a duplicate its hidden lead, to a council control room that gets
    404 for that report (red-team probe, 2026-12-04). Now they are left out for who may not see it."""
    at = T + timedelta(days=9)
    lead = f.reported(occurred_at=at, category="fire", source=f.source(kind="control_room", id="op-1", agency="council"))
    hidden = f.reported(occurred_at=at, category="domestic_abuse",
                        source=f.source(kind="police", id="pc-1", agency="police"))
    related = ev.Related(incident_id=hidden.incident_id, rule_id="same-fire-or-collapse", distance_m=0.0,
                         interval_s=0.0)
    escalation = raised(lead, related_incident_ids=(hidden.incident_id,), related=(related,))
    duplicate = f.reported(occurred_at=at + timedelta(minutes=1), category="fire")
    link = f.fact(ev.IncidentLinked, duplicate.incident_id, at + timedelta(minutes=2), lead_incident_id=hidden.incident_id)
    await store.write(lead, hidden, escalation, duplicate, link)
    council = headers(query_settings, Role.CONTROL_ROOM, Agency.COUNCIL)
    assert (await client.get(f"/v1/incidents/{hidden.incident_id}", headers=council)).status_code in (404, 428)
    for incident in (lead, duplicate):
        body = await client.get(f"/v1/incidents/{incident.incident_id}", headers=council)
        assert body.status_code == 200, body.text
        assert str(hidden.incident_id) not in body.text
    assert (await client.get(f"/v1/incidents/{duplicate.incident_id}", headers=council)).json()[
        "incident"]["lead_incident_id"] is None
    listed = await client.get("/v1/incidents", headers=council, params={"from": at.isoformat(), "category": "fire"})
    assert str(duplicate.incident_id) in listed.text and str(hidden.incident_id) not in listed.text
    police = headers(query_settings, Role.RESPONDER, Agency.POLICE, reason="investigating the fire")
    seen = (await client.get(f"/v1/incidents/{lead.incident_id}", headers=police)).json()
    [entry] = [e for e in seen["timeline"] if e["event_type"] == "EscalationRaised"]
    assert [r["incident_id"] for r in entry["payload"]["related"]] == [str(hidden.incident_id)]
