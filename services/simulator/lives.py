"""Ordinary incidents: a report, sometimes late, sometimes echoed by other sources, and
a plausible life after it (acknowledged, responders dispatched and arriving, resolved,
closed; or unfounded, or a false alarm)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from services.shared import events as ev
from services.shared.events import Agency, Category, IncidentStatus, Mode, PersonRole, PoliceGrading
from services.shared.wards import Ward
from services.simulator.model import DESCRIPTIONS, CategoryProfile
from services.simulator.story import Story, minutes, near, source

LATE_CHANCE = 0.05  # a report that reaches us minutes to hours after the fact
SLOW_ACK_CHANCE = 0.04  # nobody acknowledges it for a long while (an escalation trigger)
UNFOUNDED_CHANCE = 0.05
FALSE_ALARM_CHANCE = 0.10  # of fire and CCTV reports

# Minutes to acknowledge, by severity 1..5 (low, high).
ACK_MINUTES = {1: (5, 30), 2: (3, 15), 3: (2, 8), 4: (1, 4), 5: (0.3, 2)}
GRADED = (Category.HATE_INCIDENT, Category.COMMUNITY_TENSION_REPORT)
WITH_PEOPLE = (Category.DOMESTIC_ABUSE, Category.SAFEGUARDING_CHILD, Category.SAFEGUARDING_ADULT)


def weighted(rng: random.Random, pairs) -> object:
    items, weights = zip(*pairs)
    return rng.choices(items, weights=weights)[0]


def incident(rng: random.Random, profile: CategoryProfile, ward: Ward, occurred_at: datetime,
             mode: Mode) -> list[ev.IncidentEvent]:
    """One incident and its duplicates, each with its life, in per-incident order."""
    kind = weighted(rng, profile.sources)
    severity = rng.choices(range(1, 6), weights=profile.severity)[0]
    late = rng.random() < LATE_CHANCE
    recorded_at = occurred_at + (minutes(rng, 15, 360) if late else minutes(rng, 0.2, 4))
    lat, lon = near(rng, ward)
    fields = _report_fields(rng, profile, severity, ward, lat, lon)
    story = Story(rng, mode)
    story.report(occurred_at=occurred_at, recorded_at=recorded_at, source=source(rng, kind), **fields)
    life(story)
    stories = [story]
    if profile.visible and rng.random() < profile.duplicate_chance * (1 + severity / 5):
        others = [k for k, _ in profile.sources if k != kind] or [kind]
        stories += echoes(story, rng.choices(others, k=rng.randint(1, 3)), mode)
    return [e for s in stories for e in s.events]


def _report_fields(rng: random.Random, profile: CategoryProfile, severity: int, ward: Ward, lat: float,
                   lon: float) -> dict:
    casualties = ev.Casualties()
    if rng.random() < profile.casualty_chance:
        casualties = ev.Casualties(
            minor=rng.randint(1, 2), serious=rng.randint(0, 1) if severity >= 3 else 0,
            fatalities=1 if severity == 5 and rng.random() < 0.3 else 0,
        )
    agencies = list(profile.agencies)
    if casualties.total and Agency.AMBULANCE not in agencies:
        agencies.append(Agency.AMBULANCE)
    hazards = profile.hazards if (severity >= 3 or profile.category is Category.FIRE) else ()
    fields = dict(
        category=profile.category, severity=severity,
        location=ev.Location(ward_code=ward.code, lat=lat, lon=lon, address=f"Near {ward.name}"),
        description=rng.choice(DESCRIPTIONS[profile.category]),
        casualties=casualties, hazards=hazards, agencies_required=tuple(agencies),
    )
    if profile.category in GRADED:
        fields["police_grading"] = rng.choice(list(PoliceGrading))
    if profile.category in WITH_PEOPLE and rng.random() < 0.5:
        fields["people"] = (ev.Person(role=PersonRole.VICTIM, age=rng.randint(4, 90)),)
    return fields


def life(story: Story) -> None:
    """What usually happens after a report, drawn from the story's generator."""
    rng, reported = story.rng, story.events[0]
    severity = reported.severity
    low, high = ACK_MINUTES[severity]
    slow = rng.random() < SLOW_ACK_CHANCE
    story.acknowledge(minutes(rng, 35, 120) if slow else minutes(rng, low, high))
    if rng.random() < UNFOUNDED_CHANCE:
        story.status(minutes(rng, 5, 40), IncidentStatus.UNFOUNDED, "No trace on checking")
        story.status(minutes(rng, 5, 60), IncidentStatus.CLOSED)
        return
    dispatched = severity >= 2 or rng.random() < 0.5
    if dispatched:
        etas = []
        for i, agency in enumerate(reported.agencies_required):
            eta = rng.randint(3, 8) if severity >= 4 else rng.randint(5, 25)
            story.dispatch(minutes(rng, 0.5, 6) if i == 0 else minutes(rng, 0, 3), agency, eta)
            if i == 0:
                story.status(timedelta(seconds=1), IncidentStatus.DISPATCHED)
            etas.append((agency, eta))
        for i, (agency, eta) in enumerate(etas):
            story.arrive(minutes(rng, eta * 0.6, eta * 1.3) if i == 0 else minutes(rng, 0, 5), agency)
            if i == 0:
                story.status(timedelta(seconds=1), IncidentStatus.ON_SCENE)
    false_alarm = reported.category is Category.FIRE or reported.source.kind is ev.SourceKind.CCTV
    if false_alarm and severity <= 2 and rng.random() < FALSE_ALARM_CHANCE:
        story.status(minutes(rng, 5, 20), IncidentStatus.FALSE_ALARM, "False alarm with good intent")
        story.status(minutes(rng, 5, 60), IncidentStatus.CLOSED)
        return
    if severity >= 4:
        story.status(minutes(rng, 20, 90), IncidentStatus.CONTAINED)
    if rng.random() < 0.3:
        story.note(minutes(rng, 5, 30), "Area checked; advice given; partners informed")
    story.status(minutes(rng, 10, 30 * severity), IncidentStatus.RESOLVED)
    story.status(minutes(rng, 10, 360), IncidentStatus.CLOSED)


def echoes(lead: Story, kinds, mode: Mode) -> list[Story]:
    """Other sources (one per kind) report the same thing close by, minutes later, each as an
    incident of its own; the control room links each to the lead and closes it."""
    rng, reported = lead.rng, lead.events[0]
    stories = []
    for kind in kinds:
        story = Story(rng, mode)
        lat = round(reported.location.lat + rng.uniform(-0.0012, 0.0012), 5)  # within about 100 m
        lon = round(reported.location.lon + rng.uniform(-0.0012, 0.0012), 5)
        occurred = reported.occurred_at + minutes(rng, -3, 3)
        fields = reported.model_dump(include={"category", "severity", "description", "casualties", "hazards",
                                              "agencies_required", "police_grading"})
        story.report(occurred_at=occurred, recorded_at=max(occurred, reported.recorded_at) + minutes(rng, 0.5, 8),
                     source=source(rng, kind), location=ev.Location(ward_code=reported.location.ward_code,
                                                                     lat=lat, lon=lon), **fields)
        story.link(minutes(rng, 3, 15), reported.incident_id, "Same incident reported by another source")
        story.status(minutes(rng, 0.5, 2), IncidentStatus.CLOSED, "Duplicate of the linked incident")
        stories.append(story)
    return stories
