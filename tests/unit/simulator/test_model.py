"""Rhythms and base rates: the borough is busier where and when it should be."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from services.shared import events as ev
from services.simulator.generator import FeedConfig, generate
from services.simulator.model import HOURLY, PROFILES, WEEKLY, hourly_rate, rhythm, ward_profile
from services.simulator.scenarios import ward_named

SAT_2300 = datetime(2026, 11, 21, 23, 0, tzinfo=timezone.utc)
TUE_1000 = datetime(2026, 11, 17, 10, 0, tzinfo=timezone.utc)
WED_1600 = datetime(2026, 11, 18, 16, 0, tzinfo=timezone.utc)
SUN_1600 = datetime(2026, 11, 22, 16, 0, tzinfo=timezone.utc)
MONDAY = datetime(2026, 11, 16, tzinfo=timezone.utc)


def test_every_rhythm_averages_one_over_the_day_and_the_week():
    for table in (HOURLY, WEEKLY):
        for values in table.values():
            assert abs(sum(values) / len(values) - 1) < 1e-9


def test_the_night_time_economy_peaks_on_weekend_nights():
    assert rhythm("night_economy", SAT_2300) > 5 * rhythm("night_economy", TUE_1000)


def test_school_hours_end_in_a_weekday_afternoon_peak():
    assert rhythm("school", WED_1600) > 2 * rhythm("school", SUN_1600)
    assert rhythm("school", WED_1600) > 3 * rhythm("school", TUE_1000.replace(hour=3))


def test_rhythms_follow_london_time_not_utc():
    summer_midnight_london = datetime(2026, 7, 4, 23, 0, tzinfo=timezone.utc)  # 00:00 BST
    assert rhythm("office", summer_midnight_london) == HOURLY["office"][0] * WEEKLY["office"][5]


def test_a_night_economy_ward_has_more_violence_at_night_than_a_quiet_ward():
    violence = PROFILES[ev.Category.VIOLENCE]
    spitalfields, island = ward_profile("Spitalfields & Banglatown"), ward_profile("Island Gardens")
    assert hourly_rate(violence, spitalfields, SAT_2300) > 4 * hourly_rate(violence, island, SAT_2300)


def test_canary_wharf_is_busy_on_weekdays_and_quiet_at_weekends():
    street = PROFILES[ev.Category.STREET_WELFARE]
    wharf = ward_profile("Canary Wharf")
    weekday = hourly_rate(street, wharf, TUE_1000)
    assert weekday > 3 * hourly_rate(street, wharf, TUE_1000 + timedelta(days=5))


def test_a_simulated_fortnight_shows_the_rhythms_and_the_ward_differences():
    reports = [e for e in generate(FeedConfig(start=MONDAY, hours=24 * 14, seed=11))
               if isinstance(e, ev.IncidentReported)]
    night = [r for r in reports if r.category is ev.Category.VIOLENCE]
    by_hour = Counter(r.occurred_at.hour for r in night)
    assert sum(by_hour[h] for h in (21, 22, 23, 0, 1, 2)) > 3 * sum(by_hour[h] for h in (6, 7, 8, 9, 10, 11))
    by_day = Counter(r.occurred_at.weekday() for r in night)
    assert by_day[5] + by_day[6] > by_day[1] + by_day[2]  # Sat+Sun nights against Tue+Wed
    by_ward = Counter(r.location.ward_code for r in reports)
    assert by_ward[ward_named("Whitechapel").code] > 2 * by_ward[ward_named("Island Gardens").code]
