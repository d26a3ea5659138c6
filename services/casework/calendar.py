"""Statutory time: working days in England and Wales, calendar months, London dates.

A working day is Monday to Friday except the bank holidays of England and Wales (from the
`holidays` package, which follows the proclamations, substitute days included). A clock of
N working days that starts on some day is due at the end of the Nth working day after it,
in London time: a complaint on a Friday afternoon with a 1-working-day clock is due at the
end of Monday (or Tuesday, after a bank-holiday Monday).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta

LONDON = ZoneInfo("Europe/London")


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def london_date(at: datetime) -> date:
    return at.astimezone(LONDON).date()


def add_working_days(at: datetime, days: int) -> datetime:
    """The end of the `days`th working day after `at`'s London date (an aware UTC-comparable
    datetime: the first instant of the next day, London time)."""
    day = london_date(at)
    left = days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON)


def working_days_between(start: datetime, end: datetime) -> int:
    """Whole working days after `start`'s London date up to and including `end`'s."""
    a, b = london_date(start), london_date(end)
    count = 0
    while a < b:
        a += timedelta(days=1)
        count += is_working_day(a)
    return count


def add_months(at: datetime, months: int) -> datetime:
    """Calendar months, as the law counts them (31 January + 1 month is 28/29 February)."""
    return at + relativedelta(months=months)
