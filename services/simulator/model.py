"""The simulated borough: how often what happens where, and who reports it.

Pure data and pure functions. Rates are incidents per day; rhythms are multipliers with a
mean of 1 over the day (by London local hour) and over the week (Monday = 0), so a
category's daily total is its base rate whatever its shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.shared.events import Agency, Category, Hazard, SourceKind

LONDON = ZoneInfo("Europe/London")


def _normalise(values: tuple[float, ...]) -> tuple[float, ...]:
    mean = sum(values) / len(values)
    return tuple(v / mean for v in values)


# --- rhythms --------------------------------------------------------------------------------
#                          00   01   02   03   04   05   06   07   08   09   10   11
#                          12   13   14   15   16   17   18   19   20   21   22   23
HOURLY: dict[str, tuple[float, ...]] = {
    # Bars, clubs, late takeaways: busiest 21:00-03:00.
    "night_economy": _normalise((
        2.6, 2.8, 2.4, 1.6, 0.8, 0.3, 0.2, 0.2, 0.3, 0.3, 0.4, 0.5,
        0.6, 0.6, 0.6, 0.7, 0.8, 0.9, 1.1, 1.4, 1.8, 2.2, 2.5, 2.6)),
    # Young people out of school: a peak from 15:00 to 19:00.
    "school": _normalise((
        0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 0.9, 0.7, 0.6, 0.6,
        0.8, 0.8, 1.2, 2.6, 2.9, 2.6, 2.0, 1.5, 1.2, 0.9, 0.6, 0.4)),
    # Reports made by professionals in office hours (safeguarding referrals, housing).
    "office": _normalise((
        0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 1.8, 2.4, 2.5, 2.4,
        2.1, 2.3, 2.4, 2.2, 1.9, 1.3, 0.7, 0.4, 0.3, 0.2, 0.2, 0.1)),
    # Traffic: rush hours.
    "traffic": _normalise((
        0.3, 0.2, 0.2, 0.2, 0.2, 0.4, 0.9, 1.8, 2.2, 1.3, 1.0, 1.0,
        1.1, 1.1, 1.1, 1.4, 1.9, 2.2, 1.8, 1.2, 0.9, 0.7, 0.5, 0.4)),
    # Homes: evenings and nights (domestic abuse, house fires, noise from neighbours).
    "home": _normalise((
        1.3, 1.1, 0.8, 0.6, 0.4, 0.3, 0.4, 0.6, 0.7, 0.7, 0.7, 0.8,
        0.9, 0.9, 0.9, 1.0, 1.1, 1.3, 1.5, 1.7, 1.8, 1.8, 1.7, 1.5)),
    # Streets in the daytime: markets, gatherings, street welfare.
    "daytime": _normalise((
        0.3, 0.2, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.1, 1.3, 1.5, 1.6,
        1.7, 1.7, 1.6, 1.6, 1.5, 1.4, 1.3, 1.2, 1.0, 0.8, 0.6, 0.4)),
}

#                          Mon  Tue  Wed  Thu  Fri  Sat  Sun
WEEKLY: dict[str, tuple[float, ...]] = {
    "night_economy": _normalise((0.6, 0.6, 0.7, 0.9, 1.5, 1.7, 1.0)),
    "school": _normalise((1.2, 1.2, 1.2, 1.2, 1.1, 0.6, 0.5)),
    "office": _normalise((1.3, 1.3, 1.3, 1.3, 1.2, 0.3, 0.3)),
    "traffic": _normalise((1.1, 1.1, 1.1, 1.1, 1.2, 0.8, 0.6)),
    "home": _normalise((0.9, 0.9, 0.9, 0.9, 1.0, 1.2, 1.2)),
    "daytime": _normalise((0.9, 0.9, 0.9, 0.9, 1.0, 1.3, 1.1)),
}


@dataclass(frozen=True, slots=True)
class CategoryProfile:
    """How one category behaves: daily rate share, rhythm, who reports it, how bad it is."""

    category: Category
    per_day: float  # incidents a day in an average ward
    rhythm: str  # a key of HOURLY and WEEKLY
    sources: tuple[tuple[SourceKind, float], ...]
    severity: tuple[float, float, float, float, float]  # weights of severity 1..5
    agencies: tuple[Agency, ...]
    hazards: tuple[Hazard, ...] = ()
    casualty_chance: float = 0.0
    duplicate_chance: float = 0.0  # several sources report the same thing
    visible: bool = True  # can the public see it (for duplicate reports)


S = SourceKind
A = Agency
H = Hazard
C = Category

CATEGORIES: tuple[CategoryProfile, ...] = (
    CategoryProfile(C.ANTISOCIAL_BEHAVIOUR, 1.60, "school",
                    ((S.ENFORCEMENT_OFFICER, 4), (S.PUBLIC, 3), (S.CCTV, 2), (S.HOUSING, 2), (S.CONTROL_ROOM, 1)),
                    (4, 4, 1.5, 0.2, 0), (A.COUNCIL,), duplicate_chance=0.08),
    CategoryProfile(C.NOISE, 0.80, "home", ((S.PUBLIC, 5), (S.ENFORCEMENT_OFFICER, 2), (S.HOUSING, 2)),
                    (6, 3, 0.5, 0, 0), (A.COUNCIL,), duplicate_chance=0.10),
    CategoryProfile(C.CRIMINAL_DAMAGE, 0.55, "night_economy",
                    ((S.PUBLIC, 3), (S.CCTV, 2), (S.HOUSING, 2), (S.ENFORCEMENT_OFFICER, 2)),
                    (4, 4, 1, 0, 0), (A.COUNCIL, A.POLICE)),
    CategoryProfile(C.VIOLENCE, 0.70, "night_economy",
                    ((S.POLICE, 4), (S.CCTV, 3), (S.AMBULANCE, 1), (S.PUBLIC, 2)),
                    (0.5, 3, 4, 1.2, 0.1), (A.POLICE, A.AMBULANCE), (H.CROWD,), 0.45, 0.15),
    CategoryProfile(C.KNIFE_CRIME, 0.12, "school", ((S.POLICE, 4), (S.AMBULANCE, 2), (S.CCTV, 2), (S.PUBLIC, 1)),
                    (0, 0.5, 3, 3, 0.5), (A.POLICE, A.AMBULANCE), (H.WEAPONS,), 0.6, 0.15),
    CategoryProfile(C.WEAPON_FOUND, 0.08, "daytime",
                    ((S.PUBLIC, 3), (S.ENFORCEMENT_OFFICER, 2), (S.HOUSING, 1), (S.POLICE, 1)),
                    (1, 3, 2, 0.3, 0), (A.POLICE,), (H.WEAPONS,)),
    CategoryProfile(C.DRUGS, 0.55, "night_economy",
                    ((S.CCTV, 3), (S.ENFORCEMENT_OFFICER, 3), (S.POLICE, 2), (S.PUBLIC, 2)),
                    (3, 4, 1, 0, 0), (A.POLICE, A.COUNCIL)),
    CategoryProfile(C.STREET_WELFARE, 0.60, "daytime",
                    ((S.VOLUNTARY, 4), (S.ENFORCEMENT_OFFICER, 2), (S.AMBULANCE, 1), (S.PUBLIC, 2)),
                    (3, 4, 1, 0.1, 0), (A.VOLUNTARY, A.COUNCIL), casualty_chance=0.1),
    CategoryProfile(C.ROAD_TRAFFIC_COLLISION, 0.30, "traffic",
                    ((S.POLICE, 3), (S.AMBULANCE, 2), (S.CCTV, 2), (S.PUBLIC, 3)),
                    (1, 3, 2.5, 0.8, 0.1), (A.POLICE, A.AMBULANCE), (H.TRAFFIC,), 0.55, 0.2),
    CategoryProfile(C.FIRE, 0.22, "home", ((S.FIRE, 4), (S.PUBLIC, 3), (S.HOUSING, 1), (S.CCTV, 1)),
                    (1.5, 3, 2, 0.6, 0.1), (A.FIRE,), (H.FIRE, H.SMOKE), 0.2, 0.25),
    CategoryProfile(C.FLOOD, 0.05, "daytime", ((S.HOUSING, 3), (S.PUBLIC, 2), (S.FIRE, 1)),
                    (1, 3, 2, 0.3, 0), (A.HOUSING, A.FIRE), (H.FLOODING, H.ELECTRICAL)),
    CategoryProfile(C.EXPLOSION_OR_COLLAPSE, 0.01, "daytime", ((S.FIRE, 2), (S.POLICE, 1), (S.PUBLIC, 1)),
                    (0, 0.5, 2, 2, 1), (A.FIRE, A.POLICE, A.AMBULANCE), (H.STRUCTURAL_COLLAPSE, H.GAS_LEAK), 0.5,
                    0.3),
    CategoryProfile(C.HATE_INCIDENT, 0.20, "daytime",
                    ((S.POLICE, 3), (S.PUBLIC, 3), (S.VOLUNTARY, 2), (S.CCTV, 1)),
                    (1, 4, 2, 0.2, 0), (A.POLICE,), casualty_chance=0.1),
    CategoryProfile(C.PROTEST_OR_GATHERING, 0.10, "daytime", ((S.POLICE, 3), (S.CCTV, 2), (S.CONTROL_ROOM, 1)),
                    (3, 3, 1, 0.1, 0), (A.POLICE, A.COUNCIL), (H.CROWD,)),
    CategoryProfile(C.COMMUNITY_TENSION_REPORT, 0.10, "office",
                    ((S.POLICE, 3), (S.VOLUNTARY, 3), (S.CONTROL_ROOM, 1)),
                    (2, 4, 1, 0, 0), (A.POLICE, A.COUNCIL), visible=False),
    CategoryProfile(C.DOMESTIC_ABUSE, 0.45, "home", ((S.POLICE, 4), (S.HOUSING, 2), (S.VOLUNTARY, 2)),
                    (0.5, 3, 3, 0.8, 0.1), (A.POLICE,), casualty_chance=0.25, visible=False),
    CategoryProfile(C.SAFEGUARDING_CHILD, 0.20, "office",
                    ((S.VOLUNTARY, 3), (S.HOUSING, 1), (S.POLICE, 2), (S.CONTROL_ROOM, 1)),
                    (0.5, 3, 3, 0.5, 0), (A.COUNCIL, A.POLICE), visible=False),
    CategoryProfile(C.SAFEGUARDING_ADULT, 0.20, "office", ((S.HOUSING, 3), (S.VOLUNTARY, 3), (S.AMBULANCE, 1)),
                    (1, 3, 2, 0.3, 0), (A.COUNCIL,), visible=False),
    CategoryProfile(C.RADICALISATION_CONCERN, 0.03, "office", ((S.POLICE, 2), (S.VOLUNTARY, 1)),
                    (0, 2, 3, 1, 0), (A.POLICE, A.COUNCIL), visible=False),
    CategoryProfile(C.CRIMINAL_EXPLOITATION, 0.07, "school", ((S.POLICE, 2), (S.VOLUNTARY, 2), (S.HOUSING, 1)),
                    (0, 2, 3, 1, 0), (A.POLICE, A.COUNCIL), visible=False),
    CategoryProfile(C.ILLEGAL_RAVE, 0.02, "night_economy",
                    ((S.PUBLIC, 3), (S.ENFORCEMENT_OFFICER, 1), (S.POLICE, 1)),
                    (0, 1, 3, 1, 0), (A.POLICE, A.COUNCIL), (H.CROWD,), 0.1, 0.4),
    CategoryProfile(C.OTHER, 0.30, "daytime", ((S.PUBLIC, 3), (S.CONTROL_ROOM, 2)),
                    (4, 3, 0.5, 0, 0), (A.COUNCIL,)),
)
PROFILES: dict[Category, CategoryProfile] = {p.category: p for p in CATEGORIES}


@dataclass(frozen=True, slots=True)
class WardProfile:
    """A ward's character: its overall rate, and how much of it is night-time economy."""

    base: float  # multiplier of the average ward's rate
    night_economy: float = 1.0  # extra multiplier for night-economy categories
    office: float = 1.0  # business districts: busy weekdays, quiet nights and weekends


# Ward names from the borough's list; a ward not named here is an average ward.
WARD_PROFILES: dict[str, WardProfile] = {
    "Whitechapel": WardProfile(1.6, night_economy=1.3),
    "Spitalfields & Banglatown": WardProfile(1.5, night_economy=2.0),
    "Weavers": WardProfile(1.2, night_economy=1.6),
    "Bethnal Green": WardProfile(1.3, night_economy=1.3),
    "Canary Wharf": WardProfile(0.9, night_economy=0.5, office=1.8),
    "Poplar": WardProfile(1.1),
    "Bow East": WardProfile(0.9),
    "Bow West": WardProfile(0.7),
    "Mile End": WardProfile(1.1),
    "Shadwell": WardProfile(1.1),
    "Stepney Green": WardProfile(0.9),
    "Island Gardens": WardProfile(0.6, night_economy=0.6),
    "St Katharine's & Wapping": WardProfile(0.7, night_economy=0.8),
    "Blackwall & Cubitt Town": WardProfile(0.8, night_economy=0.7),
    "Lansbury": WardProfile(1.0),
}
AVERAGE_WARD = WardProfile(1.0)


def ward_profile(name: str) -> WardProfile:
    return WARD_PROFILES.get(name, AVERAGE_WARD)


def rhythm(name: str, at: datetime) -> float:
    """The multiplier of a rhythm at a moment (London local hour and weekday)."""
    local = at.astimezone(LONDON)
    return HOURLY[name][local.hour] * WEEKLY[name][local.weekday()]


def hourly_rate(profile: CategoryProfile, ward: WardProfile, at: datetime, intensity: float = 1.0) -> float:
    """Expected incidents of one category in one ward during the hour starting `at`."""
    rate = profile.per_day / 24 * ward.base * rhythm(profile.rhythm, at) * intensity
    if profile.rhythm == "night_economy":
        rate *= ward.night_economy
    elif profile.rhythm in ("office", "daytime") and ward.office != 1.0:
        rate *= ward.office * WEEKLY["office"][at.astimezone(LONDON).weekday()]
    return rate


# Who acts for each agency, and who a source reports for.
SOURCE_AGENCY: dict[SourceKind, Agency | None] = {
    S.CCTV: A.COUNCIL,
    S.ENFORCEMENT_OFFICER: A.COUNCIL,
    S.CONTROL_ROOM: A.COUNCIL,
    S.POLICE: A.POLICE,
    S.FIRE: A.FIRE,
    S.AMBULANCE: A.AMBULANCE,
    S.HOUSING: A.HOUSING,
    S.VOLUNTARY: A.VOLUNTARY,
    S.PUBLIC: None,
    S.SYSTEM: None,
}
SOURCE_ID_PREFIX: dict[SourceKind, str] = {
    S.CCTV: "cctv-cam-",
    S.ENFORCEMENT_OFFICER: "eo-",
    S.CONTROL_ROOM: "op-",
    S.POLICE: "met-",
    S.FIRE: "lfb-",
    S.AMBULANCE: "las-",
    S.HOUSING: "hsg-",
    S.VOLUNTARY: "vol-",
    S.PUBLIC: "public-",
    S.SYSTEM: "sys-",
}
CALLSIGN_PREFIX: dict[Agency, str] = {
    A.COUNCIL: "EO",
    A.POLICE: "HT",
    A.FIRE: "F",
    A.AMBULANCE: "LAS",
    A.HOUSING: "HSG",
    A.VOLUNTARY: "VOL",
}

# What an incident of each category says, without any personal detail.
DESCRIPTIONS: dict[Category, tuple[str, ...]] = {
    C.ANTISOCIAL_BEHAVIOUR: ("Group causing a nuisance outside the shops", "Youths gathering in the stairwell",
                             "Nuisance motorbikes on the estate"),
    C.NOISE: ("Loud music from a flat", "Party noise in the courtyard", "Amplified music from a vehicle"),
    C.CRIMINAL_DAMAGE: ("Bus shelter glass smashed", "Graffiti on the community centre", "Car windows broken"),
    C.VIOLENCE: ("Fight outside a bar", "Assault at the bus stop", "Altercation in the takeaway"),
    C.KNIFE_CRIME: ("Stabbing reported near the station", "Person seen with a knife on the high street"),
    C.WEAPON_FOUND: ("Knife found in a bin on the estate", "Suspected weapon hidden in a hedge"),
    C.DRUGS: ("Suspected drug dealing in the park", "Drug paraphernalia in the stairwell"),
    C.STREET_WELFARE: ("Rough sleeper in need of help", "Vulnerable person on the street at night"),
    C.ROAD_TRAFFIC_COLLISION: ("Car and cyclist collision at the junction", "Two-vehicle collision on the A13"),
    C.FIRE: ("Bin fire spreading to a fence", "Kitchen fire in a flat", "Car alight in the car park"),
    C.FLOOD: ("Burst water main flooding the road", "Flooding in a basement flat"),
    C.EXPLOSION_OR_COLLAPSE: ("Partial collapse of a hoarding", "Reported gas explosion in a shop"),
    C.HATE_INCIDENT: ("Racist abuse shouted at a shopkeeper", "Hate graffiti on a place of worship"),
    C.PROTEST_OR_GATHERING: ("Unplanned gathering on the market square", "Protest march on the high street"),
    C.COMMUNITY_TENSION_REPORT: ("Partner reports rising tension after an online rumour",
                                 "Residents' association reports fear after recent incidents"),
    C.DOMESTIC_ABUSE: ("Domestic incident reported by a neighbour", "Referral after a domestic incident"),
    C.SAFEGUARDING_CHILD: ("Concern for a child reported by a school", "Child found alone late at night"),
    C.SAFEGUARDING_ADULT: ("Concern for a vulnerable adult tenant", "Self-neglect concern raised by housing"),
    C.RADICALISATION_CONCERN: ("Concern about extremist material being shared",),
    C.CRIMINAL_EXPLOITATION: ("Suspected county lines activity at a flat", "Young people seen running drugs"),
    C.ILLEGAL_RAVE: ("Unlicensed music event in a warehouse",),
    C.OTHER: ("Abandoned vehicle blocking access", "Unsecured building site"),
}
