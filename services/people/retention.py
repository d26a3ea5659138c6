"""The retention schedule of people's details (docs/security.md): when an incident's data key
falls due for erasure. `period` and `due` are pure; `run` reads the status store and erases.

An incident's people fall due a period after it closed: its own terminal status's time or, for a
duplicate linked into a lead, the lead's. The period: a test or exercise incident's, in days; a
live one's by category when the schedule names it, else by classification, in years. An open
incident never falls due.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.shared import keys
from services.shared.events import Classification, IncidentStatus, Mode
from services.shared.settings import Settings

BY = "retention-schedule"


@dataclass(frozen=True, slots=True)
class Schedule:
    years: int = 6
    years_sensitive: int = 6
    years_by_category: tuple[tuple[str, int], ...] = (("safeguarding_child", 25),)
    days_exercise: int = 90
    days_test: int = 7

    @classmethod
    def of(cls, settings: Settings) -> "Schedule":
        return cls(settings.people_retention_years, settings.people_retention_years_sensitive,
                   tuple(sorted(settings.people_retention_years_by_category.items())),
                   settings.people_retention_days_exercise, settings.people_retention_days_test)


@dataclass(frozen=True, slots=True)
class Held:
    """An incident whose key is held, as the status store has it."""

    incident_id: uuid.UUID
    category: str | None
    classification: str
    mode: str
    status: str
    status_at: datetime | None
    lead_status: str | None = None
    lead_status_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Due:
    incident_id: uuid.UUID
    closed_at: datetime
    rule: str  # e.g. "live OFFICIAL: 6 years"
    due_at: datetime


def add_years(at: datetime, years: int) -> datetime:
    """The same day and time `years` later (29 February: 1 March of a year without one)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, month=3, day=1)


def period(schedule: Schedule, mode: str, category: str | None, classification: str) -> tuple[str, object]:
    """(the rule's name, a timedelta or a number of years)."""
    if mode == Mode.TEST.value:
        return f"test: {schedule.days_test} days", timedelta(days=schedule.days_test)
    if mode == Mode.EXERCISE.value:
        return f"exercise: {schedule.days_exercise} days", timedelta(days=schedule.days_exercise)
    by_category = dict(schedule.years_by_category)
    if category in by_category:
        return f"live {category}: {by_category[category]} years", by_category[category]
    if classification == Classification.OFFICIAL_SENSITIVE.value:
        return f"live {classification}: {schedule.years_sensitive} years", schedule.years_sensitive
    return f"live {classification}: {schedule.years} years", schedule.years


def closed_at(held: Held) -> datetime | None:
    if IncidentStatus(held.status).terminal and held.status_at is not None:
        return held.status_at
    if held.lead_status is not None and IncidentStatus(held.lead_status).terminal:
        return held.lead_status_at
    return None


def due(schedule: Schedule, rows: list[Held], now: datetime) -> list[Due]:
    """The incidents whose people fall due at `now` (due at or before it)."""
    out = []
    for held in rows:
        closed = closed_at(held)
        if closed is None:
            continue
        rule, length = period(schedule, held.mode, held.category, held.classification)
        due_at = add_years(closed, length) if isinstance(length, int) else closed + length
        if due_at <= now:
            out.append(Due(held.incident_id, closed, rule, due_at))
    return out


HELD = """
select i.incident_id, i.category, i.classification, i.mode, i.status, i.status_at,
       l.status as lead_status, l.status_at as lead_status_at
  from muster_keys.held() h
  join incidents i on i.incident_id = h.incident_id
  left join incidents l on l.incident_id = i.lead_incident_id
"""


async def held(conn: asyncpg.Connection) -> list[Held]:
    return [Held(**dict(r)) for r in await conn.fetch(HELD)]


async def run(conn: asyncpg.Connection, schedule: Schedule, now: datetime, *, dry_run: bool = False) -> list[Due]:
    """Erase every key that falls due at `now` (as the owner or administrator); returns them."""
    found = due(schedule, await held(conn), now)
    if not dry_run:
        for item in found:
            async with conn.transaction():
                await keys.erase(conn, item.incident_id, by=BY, basis="retention",
                                 reason=f"retention schedule, {item.rule} after closure at {item.closed_at.isoformat()}")
    return found
