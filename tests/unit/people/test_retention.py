"""The retention schedule (services/people/retention.py): which rule, and when it falls due."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from services.people.retention import Held, Schedule, add_years, due, period
from services.shared.settings import Settings

T = datetime(2021, 6, 30, 23, 59, tzinfo=timezone.utc)
TICK = timedelta(microseconds=1)


def held(status="resolved", at=T, mode="live", category="fire", classification="OFFICIAL", **kw) -> Held:
    return Held(uuid.uuid4(), category, classification, mode, status, at, **kw)


def test_add_years_keeps_the_day_and_moves_a_leap_day_to_the_first_of_march():
    assert add_years(T, 6) == T.replace(year=2027)
    assert add_years(datetime(2024, 2, 29, tzinfo=timezone.utc), 1) == datetime(2025, 3, 1, tzinfo=timezone.utc)
    assert add_years(datetime(2024, 2, 29, tzinfo=timezone.utc), 4) == datetime(2028, 2, 29, tzinfo=timezone.utc)


@pytest.mark.parametrize(("mode", "category", "classification", "rule"), [
    ("test", "safeguarding_child", "OFFICIAL-SENSITIVE", "test: 7 days"),
    ("exercise", "fire", "OFFICIAL", "exercise: 90 days"),
    ("live", "safeguarding_child", "OFFICIAL-SENSITIVE", "live safeguarding_child: 25 years"),
    ("live", "domestic_abuse", "OFFICIAL-SENSITIVE", "live OFFICIAL-SENSITIVE: 6 years"),
    ("live", "fire", "OFFICIAL", "live OFFICIAL: 6 years"),
])
def test_the_rule_goes_by_mode_then_category_then_classification(mode, category, classification, rule):
    assert period(Schedule(), mode, category, classification)[0] == rule


def test_due_at_the_instant_the_period_ends_and_not_before():
    schedule = Schedule(years=3, days_test=2)
    live, test = held(), held(mode="test")
    assert due(schedule, [live, test], T + timedelta(days=2) - TICK) == []
    assert [d.incident_id for d in due(schedule, [live, test], T + timedelta(days=2))] == [test.incident_id]
    assert [d.incident_id for d in due(schedule, [live], add_years(T, 3) - TICK)] == []
    [d] = due(schedule, [live], add_years(T, 3))
    assert (d.incident_id, d.closed_at, d.due_at, d.rule) == (live.incident_id, T, add_years(T, 3), "live OFFICIAL: 3 years")


def test_an_open_incident_never_falls_due_and_a_duplicate_closes_with_its_lead():
    far = datetime(2300, 1, 1, tzinfo=timezone.utc)
    assert due(Schedule(), [held(status="on_scene"), held(status="open", at=None)], far) == []
    duplicate = held(status="open", lead_status="resolved", lead_status_at=T)
    assert [d.closed_at for d in due(Schedule(), [duplicate], far)] == [T]
    assert due(Schedule(), [held(status="open", lead_status="dispatched", lead_status_at=T)], far) == []


def test_the_schedule_comes_from_the_settings_and_names_a_bad_category():
    schedule = Schedule.of(Settings(people_retention_years=7, people_retention_years_by_category={"hate_incident": 10}))
    assert period(schedule, "live", "hate_incident", "OFFICIAL")[0] == "live hate_incident: 10 years"
    assert period(schedule, "live", "fire", "OFFICIAL")[0] == "live OFFICIAL: 7 years"
    with pytest.raises(ValidationError, match="'arson' is not a category"):
        Settings(people_retention_years_by_category={"arson": 3})
