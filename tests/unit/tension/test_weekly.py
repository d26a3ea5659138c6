"""The weekly tension return: one definition (ISO weeks, Europe/London), from alerts or rows."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from services.shared.events import TensionLevel
from services.shared.wards import wards
from services.tension.config import load_config
from services.tension.rules import replay, to_event
from services.shared.weekly import as_change, from_alerts, render, ward_return, week_bounds, week_instants, weekly_return
from tests.tension_history import BY_WARD_PARTITIONS, START, WHITECHAPEL, background, burst, by_ward_partition, in_time_order

NAMES = {code: w.name for code, w in wards().items()}
AT = datetime(2026, 11, 17, 12, tzinfo=timezone.utc)


def alerts_of(events):
    config = load_config()
    changes = replay(by_ward_partition(events, config=config), config, BY_WARD_PARTITIONS)
    return [to_event(c, NAMES[c.ward]) for c in changes]


def change(ward, new, minutes, score=2.0, contributors=()):
    return {"event_id": uuid.uuid4(), "ward_code": ward, "new_level": new, "occurred_at": AT + timedelta(minutes=minutes),
            "score": score, "top_contributors": list(contributors)}


def test_the_week_is_an_iso_week_in_london_time():
    assert week_bounds(date(2026, 11, 19)) == (date(2026, 11, 16), date(2026, 11, 23))
    start, end = week_instants(date(2026, 10, 21))  # the clocks go back on Sunday 25 October
    assert start == datetime(2026, 10, 18, 23, tzinfo=timezone.utc)  # Monday 00:00 BST
    assert end == datetime(2026, 10, 26, 0, tzinfo=timezone.utc)  # Monday 00:00 GMT
    assert end - start == timedelta(hours=169)


def test_top_indicators_take_the_heaviest_window_not_a_sum_of_overlapping_ones():
    c = [change("W1", "elevated", 1, contributors=[{"category": "hate_incident", "weighted": 2, "count": 1},
                                                   {"category": "noise", "weighted": 0.5, "count": 3}]),
         change("W1", "high", 2, score=4, contributors=[{"category": "hate_incident", "weighted": 3, "count": 2},
                                                        {"category": "violence", "weighted": 1, "count": 1}])]
    row = ward_return("W1", "One", "normal", c)
    assert [i["category"] for i in row["top_indicators"]] == ["hate_incident", "violence", "noise"]
    assert row["top_indicators"][0] == {"category": "hate_incident", "weighted": 3.0, "count": 2}
    assert (row["level"], row["trend"], row["highest_level"], row["peak_score"]) == ("high", "rising", "high", 4.0)


def test_every_ward_is_in_the_return_and_changes_are_taken_in_event_time():
    rows = weekly_return({"W1": "One", "W2": "Two"}, {"W2": "high"}, [change("W1", "normal", 5), change("W1", "critical", 1)])
    assert [r["ward_code"] for r in rows] == ["W1", "W2"]
    assert rows[0]["level"] == "normal" and rows[1]["level"] == "high"


def test_the_week_of_a_burst_shows_the_ward_rising_with_hate_incidents_on_top():
    alerts = alerts_of(in_time_order(background(days=19), burst(WHITECHAPEL, START + timedelta(days=17, hours=18))))
    result = from_alerts(alerts, (START + timedelta(days=17)).date(), NAMES)
    rows = {r["ward_code"]: r for r in result["wards"]}
    assert len(rows) == 20
    whitechapel = rows[WHITECHAPEL]
    assert TensionLevel(whitechapel["highest_level"]).rank >= TensionLevel.ELEVATED.rank
    assert whitechapel["top_indicators"][0]["category"] == "hate_incident"
    assert all(r["level"] == "normal" and r["trend"] == "steady" for c, r in rows.items() if c != WHITECHAPEL)
    assert "Whitechapel" in render(result)


def test_the_clis_alerts_and_the_stores_rows_give_the_same_return():
    alerts = alerts_of(in_time_order(background(), burst(WHITECHAPEL, START + timedelta(days=17, hours=18))))
    day = (START + timedelta(days=18)).date()
    start, end = week_instants(day)
    before = {}
    for a in sorted(alerts, key=lambda a: (a.occurred_at, str(a.event_id))):
        if a.occurred_at < start:
            before[a.ward_code] = a.new_level.value
    rows = [as_change(a) for a in alerts if start <= a.occurred_at < end]
    assert from_alerts(alerts, day, NAMES)["wards"] == weekly_return(NAMES, before, rows)
