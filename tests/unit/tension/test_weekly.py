"""The weekly tension return, from the alerts of a four-week history."""

from __future__ import annotations

from datetime import timedelta

from services.shared.events import TensionLevel
from services.shared.wards import wards
from services.tension.config import load_config
from services.tension.rules import indicator, process, to_event
from services.tension.state import ClockState
from services.tension.weekly import render, weekly_return
from tests.tension_history import START, WHITECHAPEL, background, burst, in_time_order

NAMES = {code: w.name for code, w in wards().items()}


def alerts_of(events):
    clock, states = ClockState(), {}
    changes = process(clock, states, [indicator(e, 0, 1) for e in events], load_config()).changes
    return [to_event(c, NAMES[c.ward]) for c in changes]


def test_the_week_of_a_burst_shows_the_ward_rising_with_hate_incidents_on_top():
    alerts = alerts_of(in_time_order(background(days=19), burst(WHITECHAPEL, START + timedelta(days=17, hours=18))))
    rows = {r.ward_code: r for r in weekly_return(alerts, START + timedelta(days=18, hours=6), NAMES)}
    assert len(rows) == 20
    whitechapel = rows[WHITECHAPEL]
    assert whitechapel.level.rank >= TensionLevel.ELEVATED.rank and whitechapel.trend == "rising"
    assert whitechapel.top_indicators[0][0] == "hate_incident"
    assert all(r.level is TensionLevel.NORMAL and r.trend == "steady" for c, r in rows.items() if c != WHITECHAPEL)


def test_the_week_the_ward_came_down_shows_it_normal_with_the_peak_it_reached():
    alerts = alerts_of(in_time_order(background(), burst(WHITECHAPEL, START + timedelta(days=17, hours=18))))
    week = {r.ward_code: r for r in weekly_return(alerts, START + timedelta(days=24), NAMES)}[WHITECHAPEL]
    assert week.level is TensionLevel.NORMAL and week.peak.rank >= TensionLevel.ELEVATED.rank
    later = {r.ward_code: r for r in weekly_return(alerts, START + timedelta(days=40), NAMES)}[WHITECHAPEL]
    assert (later.trend, later.changes) == ("steady", 0)


def test_the_return_renders_one_line_per_ward_busiest_first():
    alerts = alerts_of(in_time_order(background(days=19), burst(WHITECHAPEL, START + timedelta(days=17, hours=18))))
    end = START + timedelta(days=18, hours=6)
    text = render(weekly_return(alerts, end, NAMES), end)
    lines = text.splitlines()
    assert len(lines) == 3 + 20 and lines[3].startswith("Whitechapel") and "hate_incident" in lines[3]
