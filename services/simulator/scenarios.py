"""Scripted scenarios that can be switched on: each tells one situation the partnership
trains for, at a time of day that suits it (London time), with the same randomness rules
as the background feed (a seeded generator, no wall clock)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Callable

from services.shared import events as ev
from services.shared.events import Agency, Category, Hazard, IncidentStatus, Mode, PoliceGrading, SourceKind
from services.shared.wards import Ward, wards
from services.simulator.lives import echoes, life
from services.simulator.model import LONDON
from services.simulator.story import Story, minutes, near, source

S = SourceKind


def ward_named(name: str) -> Ward:
    for ward in wards().values():
        if ward.name == name:
            return ward
    raise KeyError(f"no ward named {name!r} in the borough's ward list")


def _events(*stories: Story) -> list[ev.IncidentEvent]:
    return [e for s in stories for e in s.events]


def _report(story: Story, at: datetime, kind: SourceKind, ward: Ward, *, occurred_at: datetime | None = None,
            lat_lon: tuple[float, float] | None = None, address: str | None = None, **fields) -> None:
    lat, lon = lat_lon or near(story.rng, ward)
    story.report(occurred_at=occurred_at or at, recorded_at=at, source=source(story.rng, kind),
                 location=ev.Location(ward_code=ward.code, lat=lat, lon=lon, address=address), **fields)


# --- a tower-block fire with casualties in Poplar: a major incident ------------------------


def poplar_tower_fire(rng: random.Random, at: datetime, mode: Mode) -> list[ev.IncidentEvent]:
    poplar = ward_named("Poplar")
    fire = Story(rng, mode)
    _report(fire, at, S.FIRE, poplar, occurred_at=at - timedelta(minutes=3),
            lat_lon=(round(poplar.lat + 0.0011, 5), round(poplar.lon - 0.0009, 5)),
            address="Residential tower block, fire on floors 9 to 12",
            category=Category.FIRE, severity=5,
            description="Fire in a residential tower block spreading between floors; residents trapped above it",
            casualties=ev.Casualties(serious=3, minor=6, uninjured_involved=40),
            hazards=(Hazard.FIRE, Hazard.SMOKE, Hazard.HEIGHT),
            agencies_required=(Agency.FIRE, Agency.POLICE, Agency.AMBULANCE))
    reports = echoes(fire, (S.CCTV, S.PUBLIC, S.HOUSING), mode)
    fire.acknowledge(timedelta(seconds=25))
    for unit, agency, eta in (("F351", Agency.FIRE, 4), ("F352", Agency.FIRE, 5), ("LAS01", Agency.AMBULANCE, 6),
                              ("HT01", Agency.POLICE, 5)):
        fire.dispatch(timedelta(seconds=20), agency, eta, unit)
    fire.status(timedelta(seconds=1), IncidentStatus.DISPATCHED)
    fire.arrive(timedelta(minutes=4), Agency.FIRE, "F351")
    fire.status(timedelta(seconds=1), IncidentStatus.ON_SCENE)
    fire.arrive(minutes(rng, 1, 2), Agency.POLICE, "HT01")
    fire.arrive(minutes(rng, 0.5, 2), Agency.AMBULANCE, "LAS01")
    commander = source(rng, S.FIRE, 1)
    fire.declare_major(minutes(rng, 3, 6), commander, "Tower block fire, persons reported, 20-pump fire")
    fire.update(minutes(rng, 10, 20), commander, severity=5,
                casualties=ev.Casualties(fatalities=1, serious=5, minor=11, uninjured_involved=120),
                hazards=(Hazard.FIRE, Hazard.SMOKE, Hazard.HEIGHT, Hazard.STRUCTURAL_COLLAPSE),
                agencies_required=(Agency.FIRE, Agency.POLICE, Agency.AMBULANCE, Agency.HOUSING, Agency.COUNCIL))
    fire.dispatch(minutes(rng, 2, 5), Agency.HOUSING, 20)
    fire.note(minutes(rng, 10, 20), "Rest centre opened at the leisure centre; evacuated residents being registered")
    fire.arrive(minutes(rng, 5, 15), Agency.HOUSING)
    fire.status(timedelta(hours=3), IncidentStatus.CONTAINED, "Fire surrounded; search of upper floors continues")
    fire.status(timedelta(hours=3), IncidentStatus.RESOLVED, "Fire out; building handed to the council")
    return _events(fire, *reports)


# --- a spike of hate incidents in Whitechapel after a flashpoint ------------------------------


def whitechapel_hate_spike(rng: random.Random, at: datetime, mode: Mode) -> list[ev.IncidentEvent]:
    whitechapel = ward_named("Whitechapel")
    nearby = (whitechapel, whitechapel, whitechapel, ward_named("Spitalfields & Banglatown"), ward_named("Shadwell"))
    flashpoint = Story(rng, mode)
    _report(flashpoint, at, S.POLICE, whitechapel, address="Outside a place of worship",
            category=Category.HATE_INCIDENT, severity=4, police_grading=PoliceGrading.EVIDENCED,
            description="Assault with religious abuse outside a place of worship; video shared widely online",
            casualties=ev.Casualties(serious=1), agencies_required=(Agency.POLICE, Agency.AMBULANCE))
    stories = [flashpoint, *echoes(flashpoint, (S.CCTV, S.PUBLIC), mode)]
    life(flashpoint)
    for offset in sorted(rng.uniform(20, 8 * 60) for _ in range(16)):
        story = Story(rng, mode)
        _report(story, at + timedelta(minutes=offset), rng.choice((S.POLICE, S.PUBLIC, S.VOLUNTARY, S.CCTV)),
                rng.choice(nearby), category=Category.HATE_INCIDENT, severity=rng.choice((2, 2, 3, 3, 4)),
                police_grading=rng.choice((PoliceGrading.EVIDENCED, PoliceGrading.EXPERIENCED)),
                description=rng.choice(("Abuse shouted at worshippers", "Hate graffiti on a shop shutter",
                                        "Threats made to a market trader", "Hate leaflets pushed through doors")),
                agencies_required=(Agency.POLICE,))
        life(story)
        stories.append(story)
    for hours, grading in ((1, PoliceGrading.POTENTIAL), (3, PoliceGrading.EXPERIENCED),
                           (5, PoliceGrading.EVIDENCED), (7, PoliceGrading.EVIDENCED)):
        story = Story(rng, mode)
        _report(story, at + timedelta(hours=hours) + minutes(rng, 0, 30), rng.choice((S.VOLUNTARY, S.POLICE)),
                whitechapel, category=Category.COMMUNITY_TENSION_REPORT, severity=3, police_grading=grading,
                description="Community groups report fear and talk of retaliation after the assault",
                agencies_required=(Agency.POLICE, Agency.COUNCIL))
        story.acknowledge(minutes(rng, 2, 10))
        story.note(minutes(rng, 30, 60), "Tension monitoring group informed; reassurance patrols requested")
        stories.append(story)
    vigil = Story(rng, mode)
    _report(vigil, at + timedelta(hours=5), S.POLICE, whitechapel, category=Category.PROTEST_OR_GATHERING,
            severity=3, hazards=(Hazard.CROWD,), description="Vigil with a counter-gathering forming nearby",
            agencies_required=(Agency.POLICE, Agency.COUNCIL))
    life(vigil)
    return _events(*stories, vigil)


# --- an illegal rave closed down in Bow -------------------------------------------------------


def bow_illegal_rave(rng: random.Random, at: datetime, mode: Mode) -> list[ev.IncidentEvent]:
    bow = ward_named("Bow East")
    rave = Story(rng, mode)
    _report(rave, at, S.PUBLIC, bow, occurred_at=at - timedelta(minutes=40), address="Disused warehouse by the canal",
            category=Category.ILLEGAL_RAVE, severity=3, hazards=(Hazard.CROWD,),
            description="Loud music and a large crowd arriving at a disused warehouse",
            agencies_required=(Agency.POLICE, Agency.COUNCIL))
    neighbours = echoes(rave, (S.PUBLIC, S.PUBLIC, S.ENFORCEMENT_OFFICER), mode)
    rave.acknowledge(minutes(rng, 1, 3))
    rave.dispatch(minutes(rng, 1, 3), Agency.POLICE, 10)
    rave.status(timedelta(seconds=1), IncidentStatus.DISPATCHED)
    rave.dispatch(minutes(rng, 1, 3), Agency.COUNCIL, 20)
    rave.arrive(minutes(rng, 8, 12), Agency.POLICE)
    rave.status(timedelta(seconds=1), IncidentStatus.ON_SCENE)
    rave.update(minutes(rng, 5, 10), source(rng, S.POLICE), severity=4, hazards=(Hazard.CROWD, Hazard.ELECTRICAL),
                description="About 300 people inside; generators and no fire exits")
    rave.arrive(minutes(rng, 5, 15), Agency.COUNCIL)
    welfare = Story(rng, mode)
    _report(welfare, rave.at + minutes(rng, 20, 40), S.AMBULANCE, bow, category=Category.STREET_WELFARE, severity=3,
            description="Person taken unwell outside the rave", casualties=ev.Casualties(minor=1),
            agencies_required=(Agency.AMBULANCE,))
    life(welfare)
    rave.note(minutes(rng, 90, 120), "Direction to leave given; sound system seized by the noise team")
    rave.status(minutes(rng, 10, 20), IncidentStatus.CONTAINED, "Crowd dispersing")
    rave.status(minutes(rng, 50, 70), IncidentStatus.RESOLVED, "Site cleared and secured")
    rave.status(minutes(rng, 60, 120), IncidentStatus.CLOSED)
    return _events(rave, *neighbours, welfare)


# --- a knife-crime victim presenting at hospital ----------------------------------------------


def knife_victim_at_hospital(rng: random.Random, at: datetime, mode: Mode) -> list[ev.IncidentEvent]:
    whitechapel, stepney = ward_named("Whitechapel"), ward_named("Stepney Green")
    knife = Story(rng, mode)
    # The victim presented at the hospital in Whitechapel and says it happened in Stepney Green: the
    # report's location is that (ward only, no exact place yet), never the hospital's ward.
    hospital = ev.Location(ward_code=whitechapel.code, lat=51.5185, lon=-0.0590,
                           address="Hospital emergency department (where the victim presented)")
    knife.report(occurred_at=at - timedelta(minutes=75), recorded_at=at, source=source(rng, S.AMBULANCE),
                 location=ev.Location(ward_code=stepney.code), presented_at=hospital,
                 category=Category.KNIFE_CRIME, severity=4, hazards=(Hazard.WEAPONS,),
                 description="Young person presented at the emergency department with a stab wound; says it "
                             "happened in Stepney Green, exact scene unknown",
                 casualties=ev.Casualties(serious=1), agencies_required=(Agency.POLICE, Agency.AMBULANCE),
                 people=(ev.Person(role=ev.PersonRole.VICTIM, age=17),))
    knife.acknowledge(minutes(rng, 0.5, 2))
    knife.dispatch(minutes(rng, 1, 3), Agency.POLICE, 8)
    knife.status(timedelta(seconds=1), IncidentStatus.DISPATCHED)
    knife.arrive(minutes(rng, 6, 10), Agency.POLICE)
    knife.status(timedelta(seconds=1), IncidentStatus.ON_SCENE)
    lat, lon = near(rng, stepney)
    knife.update(minutes(rng, 40, 60), source(rng, S.POLICE),
                 location=ev.Location(ward_code=stepney.code, lat=lat, lon=lon, address="Estate walkway (scene)"),
                 description="Scene identified on an estate walkway; cordon in place")
    knife.note(minutes(rng, 5, 15), "Cordon in place; CCTV trawl requested from the council")
    safeguarding = Story(rng, mode)
    _report(safeguarding, knife.at + minutes(rng, 20, 40), S.POLICE, stepney, category=Category.SAFEGUARDING_CHILD,
            severity=3, description="Safeguarding referral for the young victim of the stabbing",
            agencies_required=(Agency.COUNCIL, Agency.POLICE))
    safeguarding.acknowledge(minutes(rng, 5, 20))
    weapon = Story(rng, mode)
    _report(weapon, knife.at + minutes(rng, 90, 150), S.ENFORCEMENT_OFFICER, stepney, category=Category.WEAPON_FOUND,
            severity=3, hazards=(Hazard.WEAPONS,), description="Knife found in bushes near the cordon",
            agencies_required=(Agency.POLICE,))
    life(weapon)
    knife.status(minutes(rng, 120, 180), IncidentStatus.CONTAINED, "Scene handed to investigators")
    return _events(knife, safeguarding, weapon)


# --- the catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    time_of_day: time  # London local time it starts, unless the command says otherwise
    build: Callable[[random.Random, datetime, Mode], list[ev.IncidentEvent]]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("poplar-fire", "Tower-block fire with casualties in Poplar (major incident)", time(2, 40),
                 poplar_tower_fire),
        Scenario("whitechapel-hate", "Spike of hate incidents in Whitechapel after a flashpoint", time(13, 0),
                 whitechapel_hate_spike),
        Scenario("bow-rave", "Illegal rave in Bow East, closed down by police and the noise team", time(0, 50),
                 bow_illegal_rave),
        Scenario("knife-hospital", "Knife-crime victim presenting at hospital", time(21, 40),
                 knife_victim_at_hospital),
    )
}


class ScenarioError(ValueError):
    pass


def parse(spec: str) -> tuple[Scenario, time | None]:
    """`poplar-fire` or `poplar-fire@14:30` (London time)."""
    name, _, when = spec.partition("@")
    scenario = SCENARIOS.get(name.strip())
    if scenario is None:
        raise ScenarioError(f"scenario: unknown {name!r}; choose from {', '.join(SCENARIOS)}")
    if not when:
        return scenario, None
    try:
        return scenario, time.fromisoformat(when.strip())
    except ValueError:
        raise ScenarioError(f"scenario {name}: time {when!r} is not HH:MM") from None


def first_at_or_after(start: datetime, time_of_day: time) -> datetime:
    """The first moment at or after `start` when London's clock shows `time_of_day`."""
    local = start.astimezone(LONDON)
    candidate = datetime.combine(local.date(), time_of_day, tzinfo=LONDON)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time_of_day, tzinfo=LONDON)
    return candidate.astimezone(start.tzinfo)
