"""A small synthetic borough history for the tension tests and benchmark (not the
borough simulator): steady background reports in every ward, plus scenario extras."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

from services.shared import events as ev
from services.shared.settings import REPO_ROOT
from services.shared.topics import TopicCatalog
from services.shared.wards import wards

START = datetime(2026, 10, 5, tzinfo=timezone.utc)  # a Monday
BY_WARD_PARTITIONS = TopicCatalog.load(REPO_ROOT / "topics.yaml").spec_of("tension.by_ward").partitions
WHITECHAPEL = "E05009336"
BOW_EAST = "E05009319"

# Background: mostly low-weight reports; the tension categories stay rare.
BACKGROUND = (
    ("antisocial_behaviour", 30), ("noise", 25), ("street_welfare", 15), ("road_traffic_collision", 10),
    ("criminal_damage", 8), ("drugs", 8), ("violence", 2), ("fire", 2),
)
_SOURCE = ev.Source(kind="control_room", id="sim-1", agency="council")


def report(ward: str, category: str, at: datetime, *, mode: str = "live", grading: str | None = None,
           rng: random.Random | None = None) -> ev.IncidentReported:
    rng = rng or random.Random()
    return ev.IncidentReported(
        incident_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        occurred_at=at, recorded_at=at + timedelta(seconds=30), source=_SOURCE,
        category=category, severity=2, location=ev.Location(ward_code=ward), description="synthetic report",
        mode=mode, police_grading=grading, exercise="tension drill" if mode == "exercise" else None,
    )


def background(days: int = 28, per_ward_daily: float = 8.0, *, start: datetime = START, seed: int = 1,
               busy: dict[str, float] | None = None, ward_codes: list[str] | None = None,
               mode: str = "live") -> list[ev.IncidentReported]:
    """Every ward's ordinary reports, spread evenly with jitter (so no accidental bursts)."""
    rng = random.Random(seed)
    categories, weights = zip(*BACKGROUND)
    out = []
    for ward in ward_codes or sorted(wards()):
        n = round(days * per_ward_daily * (busy or {}).get(ward, 1.0))
        gap = days * 86400 / n
        for i in range(n):
            at = start + timedelta(seconds=gap * i + rng.uniform(0, gap * 0.9))
            out.append(report(ward, rng.choices(categories, weights)[0], at, rng=rng, mode=mode))
    return out


def burst(ward: str, evening: datetime, *, hate: int = 8, tension: int = 6, hours: float = 4,
          seed: int = 2, mode: str = "live") -> list[ev.IncidentReported]:
    """Hate incidents and tension reports in one ward over one evening."""
    rng = random.Random(seed)
    cats = ["hate_incident"] * hate + ["community_tension_report"] * tension
    gap = hours * 3600 / len(cats)
    return [report(ward, c, evening + timedelta(seconds=gap * i), rng=rng, mode=mode) for i, c in enumerate(cats)]


def spread(ward: str, *, days: int = 28, hate: int = 8, tension: int = 6, start: datetime = START,
           seed: int = 3) -> list[ev.IncidentReported]:
    """The same reports as a burst, spread evenly over the month."""
    rng = random.Random(seed)
    cats = ["hate_incident"] * hate + ["community_tension_report"] * tension
    rng.shuffle(cats)
    gap = days * 86400 / len(cats)
    return [report(ward, c, start + timedelta(seconds=gap * (i + 0.5)), rng=rng) for i, c in enumerate(cats)]


def in_time_order(*parts: list[ev.IncidentReported]) -> list[ev.IncidentReported]:
    return sorted((e for part in parts for e in part), key=lambda e: (e.occurred_at, str(e.incident_id)))


# --- corrections and the calendar -------------------------------------------------------------

_CONTROL = ev.Source(kind="control_room", id="operator-1", agency="council")


def linked(duplicate: ev.IncidentReported, lead: ev.IncidentReported, after: timedelta) -> ev.IncidentLinked:
    return ev.IncidentLinked(incident_id=duplicate.incident_id, lead_incident_id=lead.incident_id,
                             occurred_at=duplicate.occurred_at + after, source=_CONTROL, mode=duplicate.mode)


def closed_as(report_: ev.IncidentReported, status: str, after: timedelta) -> ev.IncidentStatusChanged:
    return ev.IncidentStatusChanged(incident_id=report_.incident_id, status=status,
                                    occurred_at=report_.occurred_at + after, source=_CONTROL, mode=report_.mode)


def moved(report_: ev.IncidentReported, ward: str, after: timedelta) -> ev.IncidentUpdated:
    return ev.IncidentUpdated(incident_id=report_.incident_id, location=ev.Location(ward_code=ward),
                              occurred_at=report_.occurred_at + after, source=_CONTROL, mode=report_.mode)


def planned(wards_: list[str], starts: datetime, hours: float, *, kind: str = "bonfire_night", name: str = "Bonfire Night",
            uplift: dict[str, float] | None = None, contentious: bool = False, registered: datetime | None = None,
            planned_event_id: uuid.UUID | None = None, route: bool = False) -> ev.PlannedEventRegistered:
    at = registered or starts - timedelta(days=7)
    return ev.PlannedEventRegistered(
        planned_event_id=planned_event_id or uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{starts.isoformat()}"),
        kind=kind, name=name, wards=tuple(wards_), route=route, starts_at=starts,
        ends_at=starts + timedelta(hours=hours), expected_uplift=uplift or {}, contentious=contentious,
        occurred_at=at, source=_CONTROL)


def silenced(ward: str, category: str, at: datetime, hours: float, reason: str = "known noise") -> ev.TensionSilenced:
    return ev.TensionSilenced(silence_id=uuid.uuid5(uuid.NAMESPACE_URL, f"silence/{ward}/{category}/{at.isoformat()}"),
                              ward_code=ward, category=category, until=at + timedelta(hours=hours), reason=reason,
                              occurred_at=at, source=_CONTROL)


# --- scenarios: Bonfire Night, a contentious march ------------------------------------------

BONFIRE = datetime(2026, 11, 5, 18, tzinfo=timezone.utc)
BOW_WEST = "E05009320"
MILE_END = "E05009327"


def bonfire_night(week: int = 0) -> tuple[list[ev.IncidentReported], ev.PlannedEventRegistered]:
    """Fireworks noise around Victoria Park, Bow East and Bow West, one evening, after 17 quiet
    days; and the planned event that expects it."""
    start = BONFIRE + timedelta(weeks=week)
    base = background(days=21, start=start - timedelta(days=17), ward_codes=[BOW_EAST, BOW_WEST], seed=9)
    noise = [report(w, c, start + timedelta(minutes=6 * i)) for w in (BOW_EAST, BOW_WEST)
             for i, c in enumerate(["criminal_damage", "antisocial_behaviour", "protest_or_gathering"] * 8)]
    event = planned([BOW_EAST, BOW_WEST], start, 5, name=f"Bonfire Night {week}",
                    uplift={"criminal_damage": 8, "antisocial_behaviour": 8, "protest_or_gathering": 8})
    return base + noise, event


def by_ward_partition(events, *, source_partitions: int = 6, calendar_partitions: int = 1, config=None,
                      mode: str = "live") -> dict[int, list]:
    """What each by-ward partition receives from the re-keying stage, in order: reports to the
    partition owning their ward, corrections and calendar facts to every partition."""
    from collections import defaultdict

    from aiokafka.partitioner import DefaultPartitioner

    from services.tension.config import load_config
    from services.tension.facts import CALENDAR_TYPES
    from services.tension.rules import indicator, ward_partition
    from services.tension.state import REPORT

    config = config or load_config()
    partitions = BY_WARD_PARTITIONS
    partitioner = DefaultPartitioner()
    sources = source_partitions + calendar_partitions
    out: dict[int, list] = defaultdict(list)
    for event in events:
        if event.event_type in CALENDAR_TYPES:
            src = source_partitions
        else:
            src = partitioner(str(event.incident_id).encode(), list(range(source_partitions)),
                              list(range(source_partitions)))
        ind = indicator(event, src, sources, config)
        if ind is None or ind.mode != mode:
            continue
        if ind.kind == REPORT:
            out[ward_partition(ind.ward, partitions)].append(ind)
        else:
            for p in range(partitions):
                out[p].append(ind)
    return out
