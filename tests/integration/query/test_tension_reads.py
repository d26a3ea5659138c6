"""Tension reads of the query API: the weekly return equals the CLI's (one definition), the
operators' silences in force (shown on the board), planned events, and live by default."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from services.shared import events as ev
from services.shared.auth import Role
from services.shared.events import Agency
from services.shared.wards import wards
from services.shared.weekly import from_alerts
from tests import factories as f
from tests.integration.query.conftest import headers

pytestmark = pytest.mark.postgres

# An ISO week in which the London clocks go back (Sunday 25 October 2026): 169 hours.
WEEK = date(2026, 10, 21)
MONDAY_LONDON = datetime(2026, 10, 18, 23, 0, tzinfo=timezone.utc)  # Monday 19 Oct 00:00 BST


@pytest.fixture
def h(query_settings):
    return headers(query_settings, Role.CONTROL_ROOM, Agency.COUNCIL)


def _alert(ward: str, old: str, new: str, at: datetime, *contributors, score: float = 3.0) -> ev.TensionLevelChanged:
    return ev.TensionLevelChanged(
        ward_code=ward, ward_name=wards()[ward].name, old_level=old, new_level=new, score=score, observed=9,
        expected=3, window="24h/1h", window_start=at - timedelta(hours=24), window_end=at, occurred_at=at,
        source=f.source(kind="system", id="tension", agency=None), top_contributors=contributors,
        mode="test",  # the store is shared by the session's tests: a mode of this test's own
    )


async def test_the_weekly_return_of_the_api_equals_the_clis_for_the_same_alerts(client, store, h):
    hate = {"category": "hate_incident", "weighted": 9.0, "count": 3}
    alerts = [
        _alert(f.WHITECHAPEL, "normal", "watch", MONDAY_LONDON - timedelta(hours=2)),  # Sunday night: before the week
        _alert(f.WHITECHAPEL, "watch", "high", MONDAY_LONDON + timedelta(hours=30), hate, score=4.1),
        _alert(f.WHITECHAPEL, "high", "elevated", MONDAY_LONDON + timedelta(days=3), {**hate, "weighted": 6.0}),
        _alert(f.POPLAR, "normal", "elevated", MONDAY_LONDON + timedelta(days=7, minutes=-30),  # Sunday 23:30 GMT
               {"category": "violence", "weighted": 4.0, "count": 2}),
        _alert(f.BOW_EAST, "normal", "critical", MONDAY_LONDON + timedelta(days=7, hours=1, minutes=30)),  # next week
    ]
    await store.write(*alerts)
    api = (await client.get("/v1/tension/return", params={"week": WEEK.isoformat(), "mode": "test"}, headers=h)).json()
    cli = orjson.loads(orjson.dumps(from_alerts(alerts, WEEK, {c: w.name for c, w in wards().items()})))
    assert api["week_start"] == "2026-10-19" and api["week_end"] == "2026-10-26"
    assert {k: api[k] for k in ("week_start", "week_end", "wards")} == cli
    rows = {r["ward_code"]: r for r in api["wards"]}
    assert (rows[f.WHITECHAPEL]["level_at_start"], rows[f.WHITECHAPEL]["level"]) == ("watch", "elevated")
    assert rows[f.WHITECHAPEL]["top_indicators"] == [hate]  # the heaviest window, not a sum of overlapping ones
    assert rows[f.POPLAR]["level"] == "elevated"  # Sunday 23:30 London time is still the week
    assert rows[f.BOW_EAST]["changes"] == 0


async def test_silences_in_force_are_listed_and_shown_on_the_board_and_expire_on_their_own(client, store, h):
    now = datetime.now(timezone.utc)
    source = f.source(kind="control_room", id="op-17", agency="council")
    live = ev.TensionSilenced(silence_id=uuid.uuid4(), ward_code=f.WHITECHAPEL, category="noise",
                              until=now + timedelta(hours=2), reason="roadworks all night", occurred_at=now, source=source)
    over = ev.TensionSilenced(silence_id=uuid.uuid4(), ward_code=f.POPLAR, category="noise",
                              until=now - timedelta(minutes=1), reason="finished", occurred_at=now - timedelta(hours=1),
                              source=source)
    prevent = ev.TensionSilenced(silence_id=uuid.uuid4(), ward_code=f.BOW_EAST, category="radicalisation_concern",
                                 until=now + timedelta(hours=1), reason="known referral", occurred_at=now, source=source)
    await store.write(live, over, prevent)
    listed = (await client.get("/v1/tension/silences", headers=h)).json()
    ids = {s["silence_id"] for s in listed}
    assert str(live.silence_id) in ids and str(over.silence_id) not in ids
    assert str(prevent.silence_id) not in ids  # OFFICIAL-SENSITIVE: not for an uncleared reader
    mine = next(s for s in listed if s["silence_id"] == str(live.silence_id))
    assert (mine["reason"], mine["silenced_by"]["id"], mine["category"]) == ("roadworks all night", "op-17", "noise")
    screen = (await client.get("/board/fragments/screen", headers=h)).json()
    assert "noise silenced until" in screen["map"] and "roadworks all night" in screen["map"]


async def test_planned_events_are_listed_until_cancelled(client, store, h):
    now = datetime.now(timezone.utc)
    source = f.source(kind="control_room", id="op-17", agency="council")
    march = ev.PlannedEventRegistered(planned_event_id=uuid.uuid4(), kind="march", name="March", wards=(f.WHITECHAPEL,),
                                      starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=3),
                                      contentious=True, occurred_at=now, source=source)
    await store.write(march)
    assert str(march.planned_event_id) in {p["planned_event_id"] for p in
                                           (await client.get("/v1/tension/planned-events", headers=h)).json()}
    await store.write(ev.PlannedEventCancelled(planned_event_id=march.planned_event_id, reason="called off",
                                               occurred_at=now + timedelta(seconds=1), source=source))
    assert str(march.planned_event_id) not in {p["planned_event_id"] for p in
                                               (await client.get("/v1/tension/planned-events", headers=h)).json()}


async def test_lists_and_statistics_are_live_unless_exercise_data_is_asked_for(client, store, h):
    drill = f.reported(mode="exercise", occurred_at=datetime.now(timezone.utc))
    await store.write(drill)
    listed = (await client.get("/v1/incidents", params={"limit": 200}, headers=h)).json()
    assert str(drill.incident_id) not in {i["incident_id"] for i in listed["items"]}
    asked = (await client.get("/v1/incidents", params={"mode": "exercise", "limit": 200}, headers=h)).json()
    assert str(drill.incident_id) in {i["incident_id"] for i in asked["items"]}
    stats = (await client.get("/v1/stats", headers=h)).json()
    exercise = (await client.get("/v1/stats", params={"mode": "exercise"}, headers=h)).json()
    assert exercise["total"] >= 1 and stats["total"] == (await client.get(
        "/v1/stats", params={"mode": "live"}, headers=h)).json()["total"]
