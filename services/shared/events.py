"""Muster's events: immutable, past-tense facts, one module, one envelope.

Every event is a frozen pydantic v2 model with `extra="forbid"`. JSON Schemas in
`schemas/` are generated from these models (`muster schemas export`); partner systems
read those, never this file.

Incident facts travel on the incidents topic keyed by `incident_id`. Derived facts
(`EscalationRaised`, `EscalationStoodDown`, `TensionLevelChanged`) are published by the
processors with deterministic `event_id`s (see `derived_event_id`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.shared.wards import wards

SCHEMA_VERSION = 1

# Namespace for deterministic ids of derived events (uuid5): same inputs, same id.
MUSTER_NAMESPACE = uuid.UUID("8f1c2b4e-5d6a-4c3b-9e7f-0a1b2c3d4e5f")


def derived_event_id(*parts: object) -> uuid.UUID:
    """A deterministic event id: a replay or restart produces the same id for the same fact."""
    return uuid.uuid5(MUSTER_NAMESPACE, "/".join(str(p) for p in parts))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- vocabularies ---------------------------------------------------------------------------


class Classification(StrEnum):
    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL-SENSITIVE"

    @property
    def rank(self) -> int:
        return 0 if self is Classification.OFFICIAL else 1

    @classmethod
    def highest(cls, *values: "Classification | None") -> "Classification":
        present = [v for v in values if v is not None]
        return max(present, key=lambda c: c.rank) if present else cls.OFFICIAL


class Mode(StrEnum):
    LIVE = "live"
    EXERCISE = "exercise"
    TEST = "test"


class SourceKind(StrEnum):
    CCTV = "cctv"
    ENFORCEMENT_OFFICER = "enforcement_officer"
    CONTROL_ROOM = "control_room"
    POLICE = "police"
    FIRE = "fire"
    AMBULANCE = "ambulance"
    HOUSING = "housing"
    VOLUNTARY = "voluntary"
    PUBLIC = "public"
    SYSTEM = "system"


class Agency(StrEnum):
    COUNCIL = "council"
    POLICE = "police"
    FIRE = "fire"
    AMBULANCE = "ambulance"
    HOUSING = "housing"
    VOLUNTARY = "voluntary"


class Category(StrEnum):
    FIRE = "fire"
    FLOOD = "flood"
    EXPLOSION_OR_COLLAPSE = "explosion_or_collapse"
    ROAD_TRAFFIC_COLLISION = "road_traffic_collision"
    VIOLENCE = "violence"
    KNIFE_CRIME = "knife_crime"
    WEAPON_FOUND = "weapon_found"
    DRUGS = "drugs"
    ANTISOCIAL_BEHAVIOUR = "antisocial_behaviour"
    ILLEGAL_RAVE = "illegal_rave"
    NOISE = "noise"
    CRIMINAL_DAMAGE = "criminal_damage"
    HATE_INCIDENT = "hate_incident"
    PROTEST_OR_GATHERING = "protest_or_gathering"
    COMMUNITY_TENSION_REPORT = "community_tension_report"
    DOMESTIC_ABUSE = "domestic_abuse"
    SAFEGUARDING_CHILD = "safeguarding_child"
    SAFEGUARDING_ADULT = "safeguarding_adult"
    RADICALISATION_CONCERN = "radicalisation_concern"
    CRIMINAL_EXPLOITATION = "criminal_exploitation"
    STREET_WELFARE = "street_welfare"
    OTHER = "other"


SENSITIVE_CATEGORIES: frozenset[Category] = frozenset(
    {
        Category.DOMESTIC_ABUSE,
        Category.SAFEGUARDING_CHILD,
        Category.SAFEGUARDING_ADULT,
        Category.RADICALISATION_CONCERN,
        Category.CRIMINAL_EXPLOITATION,
    }
)


def agencies_union(*groups: "Iterable[Agency | str] | None") -> tuple[Agency, ...]:
    """Every agency named in any group, in the vocabulary's order: how `agencies_required`
    folds (it only grows; `agencies_removed` is the one way to drop one)."""
    present = {Agency(a) for g in groups if g for a in g}
    return tuple(a for a in Agency if a in present)


def default_classification(category: Category) -> Classification:
    return Classification.OFFICIAL_SENSITIVE if category in SENSITIVE_CATEGORIES else Classification.OFFICIAL


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    ON_SCENE = "on_scene"
    CONTAINED = "contained"
    RESOLVED = "resolved"
    CLOSED = "closed"
    UNFOUNDED = "unfounded"
    FALSE_ALARM = "false_alarm"

    @property
    def rank(self) -> int:
        """Progress order: an incident's status never moves to a lower rank."""
        return _STATUS_RANK[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    def advances_over(self, current: "IncidentStatus", current_at: datetime | None, at: datetime) -> bool:
        """The one rule of every fold (escalation's state, the projector's store): status never
        moves backwards. A higher rank always advances; a different status of the same rank
        (resolved, unfounded, false alarm) only when it happened later, in event time, than
        the current one, so the result does not depend on the order facts arrive in."""
        if self.rank != current.rank:
            return self.rank > current.rank
        return self is not current and (current_at is None or at > current_at)


_STATUS_RANK = {
    IncidentStatus.OPEN: 0,
    IncidentStatus.ACKNOWLEDGED: 1,
    IncidentStatus.DISPATCHED: 2,
    IncidentStatus.ON_SCENE: 3,
    IncidentStatus.CONTAINED: 4,
    IncidentStatus.RESOLVED: 5,
    IncidentStatus.UNFOUNDED: 5,
    IncidentStatus.FALSE_ALARM: 5,
    IncidentStatus.CLOSED: 6,
}
TERMINAL_STATUSES = frozenset(
    {IncidentStatus.RESOLVED, IncidentStatus.CLOSED, IncidentStatus.UNFOUNDED, IncidentStatus.FALSE_ALARM}
)


class Hazard(StrEnum):
    FIRE = "fire"
    SMOKE = "smoke"
    GAS_LEAK = "gas_leak"
    CHEMICAL = "chemical"
    STRUCTURAL_COLLAPSE = "structural_collapse"
    FLOODING = "flooding"
    ELECTRICAL = "electrical"
    WEAPONS = "weapons"
    FIREARMS = "firearms"
    CROWD = "crowd"
    TRAFFIC = "traffic"
    ASBESTOS = "asbestos"
    HEIGHT = "height"
    WATER = "water"
    OTHER = "other"


class PoliceGrading(StrEnum):
    """The police's community-tension grading of a report."""

    EVIDENCED = "evidenced"
    EXPERIENCED = "experienced"
    POTENTIAL = "potential"


class PersonRole(StrEnum):
    VICTIM = "victim"
    SUBJECT = "subject"
    WITNESS = "witness"
    REPORTER = "reporter"


# --- bounded values -------------------------------------------------------------------------

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,99}$")]
Callsign = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,39}$")]
WardCode = Annotated[str, StringConstraints(pattern=r"^E05\d{6}$")]
ExerciseName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,79}$")]


def known_ward(code: str) -> str:
    """A ward of the borough's list in force (services/shared/wards.py: set at start-up)."""
    if code not in wards():
        raise ValueError(f"unknown ward code {code!r}: not in the borough's ward list")
    return code


KnownWardCode = Annotated[WardCode, AfterValidator(known_ward)]
What3Words = Annotated[str, StringConstraints(pattern=r"^(///)?[a-z]{1,30}\.[a-z]{1,30}\.[a-z]{1,30}$")]
Count = Annotated[int, Field(ge=0, le=10_000)]
ComplainantKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
Uprn = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")]
Severity = Annotated[int, Field(ge=1, le=5, description="1 minor ... 5 catastrophic")]

# Sane bounds for a location in this partnership's work: the United Kingdom's bounding box.
# Catches swapped coordinates and the 0,0 ("null island") of a broken GPS fix.
LAT_BOUNDS = (49.8, 60.9)
LON_BOUNDS = (-8.7, 1.8)


# Every event's validation asks: plain dict lookups (a StrEnum member hashes as its value).
_FLOOR: dict[str, Classification] = {c.value: default_classification(c) for c in Category}
_RANK: dict[str, int] = {c.value: c.rank for c in Classification}


def _raise_to_category_floor(data: Any) -> Any:
    """No client can lower a classification: a category's default is its floor."""
    if not isinstance(data, dict) or (category := data.get("category")) is None:
        return data
    try:
        floor = _FLOOR[category]
        given = _RANK[data.get("classification") or Classification.OFFICIAL]
    except (KeyError, TypeError):
        return data  # field validation reports the bad value
    if given < _RANK[floor]:
        data = {**data, "classification": floor}
    return data


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Source(Frozen):
    """Who reported it."""

    kind: SourceKind
    id: Identifier = Field(description="Operator, officer, camera or system id; never a person's name.")
    agency: Agency | None = None


class Location(Frozen):
    ward_code: KnownWardCode = Field(description="ONS ward code from the borough's ward list.")
    lat: float | None = Field(None, ge=LAT_BOUNDS[0], le=LAT_BOUNDS[1])
    lon: float | None = Field(None, ge=LON_BOUNDS[0], le=LON_BOUNDS[1])
    address: ShortText | None = None
    what3words: What3Words | None = None

    @model_validator(mode="after")
    def _lat_lon_together(self) -> "Location":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class Casualties(Frozen):
    fatalities: Count = 0
    serious: Count = 0
    minor: Count = 0
    uninjured_involved: Count = 0

    @property
    def injured(self) -> int:
        return self.serious + self.minor

    @property
    def total(self) -> int:
        return self.fatalities + self.serious + self.minor


class Access(Frozen):
    """The A of M/ETHANE, as a responder on scene reported it: routes in and out, rendezvous point."""

    routes: ShortText | None = Field(None, description="Safe routes in and out, e.g. 'via East India Dock Road only'.")
    rendezvous_point: ShortText | None = Field(None, description="Where arriving resources report.")

    @model_validator(mode="after")
    def _something(self) -> "Access":
        if self.routes is None and self.rendezvous_point is None:
            raise ValueError("access: give routes, a rendezvous_point or both")
        return self


def exercise_named(event: Any) -> Any:
    """An exercise-mode report names its exercise; no other report does."""
    if event.mode is Mode.EXERCISE and event.exercise is None:
        raise ValueError("exercise: required when mode is exercise (the exercise's name or id)")
    if event.mode is not Mode.EXERCISE and event.exercise is not None:
        raise ValueError(f"exercise: only an exercise-mode report names an exercise (mode is {event.mode.value})")
    return event


class Person(Frozen):
    """A restricted field: only those cleared for it ever see it, and it is never logged."""

    role: PersonRole
    name: ShortText | None = None
    age: int | None = Field(None, ge=0, le=130)
    description: ShortText | None = None


class SealedPeople(Frozen):
    """People sealed by intake before they reach the incidents topic: AES-256-GCM under the
    incident's data key, held by the key service (services/shared/sealing.py, docs/security.md).
    Only readers cleared for people get the key; once it is erased, nobody can open this."""

    alg: Literal["A256GCM"] = "A256GCM"
    sealed: str = Field(pattern=r"^[A-Za-z0-9_-]{38,}$", max_length=16384,
                        description="base64url (unpadded) of nonce, ciphertext and tag.")




# --- the envelope ---------------------------------------------------------------------------


class Event(Frozen):
    """The envelope every event shares."""

    event_type: ClassVar[str]
    topic_key_field: ClassVar[str] = "incident_id"

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Same event_id twice is one event.")
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: AwareDatetime = Field(description="Event time: when it happened.")
    recorded_at: AwareDatetime = Field(default_factory=utcnow, description="When intake accepted it.")
    source: Source
    classification: Classification = Field(
        Classification.OFFICIAL,
        description="UK government security classification; never lowered, and at least OFFICIAL-SENSITIVE for "
        "domestic abuse, safeguarding, radicalisation and exploitation.",
    )
    mode: Mode = Field(
        Mode.LIVE,
        description="live: a real incident; exercise: a planned exercise; test: a technical test. Exercise "
        "incidents reach only exercise topics, test incidents only test topics (read by no partner); neither ever "
        "reaches a live responder topic.",
    )

    def key(self) -> str:
        return str(getattr(self, self.topic_key_field))


class IncidentEvent(Event):
    incident_id: uuid.UUID


class IncidentReported(IncidentEvent):
    event_type: Literal["IncidentReported"] = "IncidentReported"
    category: Category
    severity: Severity
    location: Location
    description: LongText
    casualties: Casualties = Casualties()
    hazards: tuple[Hazard, ...] = Field((), max_length=len(Hazard))
    agencies_required: tuple[Agency, ...] = Field((), max_length=len(Agency))
    police_grading: PoliceGrading | None = None
    people: tuple[Person, ...] = Field(
        (), max_length=20, description="Restricted. Always empty on the incidents topic: intake seals them into people_sealed.")
    people_sealed: SealedPeople | None = Field(
        None, description="The people, sealed by intake under the incident's data key (docs/security.md). Intake sets "
        "it; a producer never sends it.")
    access: Access | None = Field(None, description="A of M/ETHANE: routes and rendezvous point, once known.")
    presented_at: Location | None = Field(
        None, description="Where a casualty presented (e.g. a hospital) when that is not where it happened: "
                          "`location` stays the scene as reported, never forced to the hospital's ward.")
    outside_borough: ShortText | None = Field(
        None, description="The scene is outside the borough (e.g. 'London Borough of Hackney'); `location` is then "
                          "where the borough deals with it (e.g. where the casualty presented).")
    exercise: ExerciseName | None = Field(None, description="The exercise's name or id; required when mode is exercise.")
    complainant_key: ComplainantKey | None = Field(
        None,
        description="Restricted (OFFICIAL-SENSITIVE): a keyed hash of the reporting agency's own reference for "
        "the person complaining, never a name. The same resident's reports share it; casework counts them.",
    )
    uprn: Uprn | None = Field(None, description="Unique Property Reference Number of the premises concerned.")
    housing_provider: Identifier | None = Field(
        None, description="The registered housing provider whose tenant the complainant is, if any."
    )

    _floor = model_validator(mode="before")(classmethod(lambda cls, data: _raise_to_category_floor(data)))
    _exercise = model_validator(mode="after")(exercise_named)


class IncidentUpdated(IncidentEvent):
    """A change to what is known; only the fields given change."""

    event_type: Literal["IncidentUpdated"] = "IncidentUpdated"
    category: Category | None = None
    severity: Severity | None = None
    location: Location | None = None
    description: LongText | None = None
    casualties: Casualties | None = None
    hazards: tuple[Hazard, ...] | None = Field(None, max_length=len(Hazard))
    agencies_required: tuple[Agency, ...] | None = Field(
        None, max_length=len(Agency), description="Agencies also required: added to those already required."
    )
    agencies_removed: tuple[Agency, ...] | None = Field(
        None, max_length=len(Agency),
        description="Agencies no longer required. Only the control room, admins and the owning agencies' "
        "operational roles may remove one (intake sets this when such a caller's agencies_required omits one).",
    )
    police_grading: PoliceGrading | None = None
    people: tuple[Person, ...] | None = Field(
        None, max_length=20, description="Restricted. Never on the incidents topic: intake seals them into people_sealed.")
    people_sealed: SealedPeople | None = Field(
        None, description="The people as now known, sealed by intake under the incident's data key (docs/security.md). "
        "Intake sets it; a producer never sends it.")
    access: Access | None = Field(None, description="A of M/ETHANE: routes and rendezvous point as now known.")
    presented_at: Location | None = Field(None, description="Where a casualty presented, as now known.")
    outside_borough: ShortText | None = Field(None, description="The scene is outside the borough, as now known.")

    @model_validator(mode="after")
    def _something_changes(self) -> "IncidentUpdated":
        changed = [
            f for f in ("category", "severity", "location", "description", "casualties", "hazards",
                        "agencies_required", "agencies_removed", "police_grading", "people", "people_sealed", "access", "presented_at",
                        "outside_borough")
            if getattr(self, f) is not None
        ]
        if not changed:
            raise ValueError("an update must change at least one field")
        return self

    _floor = model_validator(mode="before")(classmethod(lambda cls, data: _raise_to_category_floor(data)))


class IncidentAcknowledged(IncidentEvent):
    event_type: Literal["IncidentAcknowledged"] = "IncidentAcknowledged"
    acknowledged_by: Identifier


class ResponderDispatched(IncidentEvent):
    """A responder was sent. Version 2: `expected_arrival_at`, a time, replaces version 1's
    `eta_minutes` (minutes from an instant version 1 never named, rounded, capped at 600).

    A version-1 record or body (`schema_version` 1, or `eta_minutes` without a version) is read
    as version 2: expected_arrival_at = occurred_at + eta_minutes. Until the transition of
    `ResponderDispatchedV1` ends, producers write both versions (codec.editions)."""

    event_type: Literal["ResponderDispatched"] = "ResponderDispatched"
    schema_version: Literal[2] = 2
    agency: Agency
    callsign: Callsign
    expected_arrival_at: AwareDatetime | None = Field(
        None, description="When the responder is expected on scene (null: not known)."
    )

    @model_validator(mode="before")
    @classmethod
    def _read_version_1(cls, data: Any) -> Any:
        if isinstance(data, dict) and (
            data.get("schema_version") == 1 or ("schema_version" not in data and "eta_minutes" in data)
        ):
            return ResponderDispatchedV1.model_validate(data).upgraded()
        return data


class ResponderDispatchedV1(IncidentEvent):
    """A responder was sent (schema_version 1, superseded by 2). `eta_minutes`: minutes from
    `occurred_at` to the expected arrival. Produced beside version 2 until its transition ends."""

    model_config = ConfigDict(title="ResponderDispatched")
    transition_ends: ClassVar[str] = "2027-03-01"

    event_type: Literal["ResponderDispatched"] = "ResponderDispatched"
    agency: Agency
    callsign: Callsign
    eta_minutes: int | None = Field(None, ge=0, le=600)

    def upgraded(self) -> dict[str, Any]:
        """This fact as version 2's fields."""
        fields = {name: getattr(self, name) for name in type(self).model_fields if name != "eta_minutes"}
        fields["schema_version"] = 2
        fields["expected_arrival_at"] = (
            None if self.eta_minutes is None else self.occurred_at + timedelta(minutes=self.eta_minutes)
        )
        return fields

    @classmethod
    def of(cls, event: "ResponderDispatched") -> "ResponderDispatchedV1":
        """Version 2 written as version 1 (same event_id): the minutes, rounded, within 0..600."""
        eta = None
        if event.expected_arrival_at is not None:
            minutes = round((event.expected_arrival_at - event.occurred_at).total_seconds() / 60)
            eta = min(max(minutes, 0), 600)
        fields = {name: getattr(event, name) for name in cls.model_fields if name not in ("eta_minutes", "schema_version")}
        return cls(**fields, eta_minutes=eta)


class ResponderArrived(IncidentEvent):
    event_type: Literal["ResponderArrived"] = "ResponderArrived"
    agency: Agency
    callsign: Callsign


class IncidentStatusChanged(IncidentEvent):
    event_type: Literal["IncidentStatusChanged"] = "IncidentStatusChanged"
    status: IncidentStatus
    reason: ShortText | None = None


class IncidentLinked(IncidentEvent):
    """This incident is a duplicate report, merged into a lead incident."""

    event_type: Literal["IncidentLinked"] = "IncidentLinked"
    lead_incident_id: uuid.UUID
    reason: ShortText | None = None

    @model_validator(mode="after")
    def _not_itself(self) -> "IncidentLinked":
        if self.lead_incident_id == self.incident_id:
            raise ValueError("lead_incident_id: an incident cannot be linked to itself")
        return self


class NoteAdded(IncidentEvent):
    event_type: Literal["NoteAdded"] = "NoteAdded"
    text: LongText


class MajorIncidentDeclared(IncidentEvent):
    """Declared by a person with the authority to do so."""

    event_type: Literal["MajorIncidentDeclared"] = "MajorIncidentDeclared"
    declared_by: Identifier
    agency: Agency
    reason: ShortText | None = None


# --- casework facts (ASB cases and problem premises) ---------------------------------------------


def _sensitive(data: Any) -> Any:
    """Casework names people's complaints and homes: always OFFICIAL-SENSITIVE."""
    if isinstance(data, dict):
        data = {**data, "classification": Classification.OFFICIAL_SENSITIVE}
    return data


class ComplaintRecorded(IncidentEvent):
    """A resident's complaint about the behaviour an incident records, as one agency took it.

    The same complaint made to the council, the police and a housing provider is recorded by
    each against the same incident and counts once. `occurred_at` is when the complaint was
    made; `behaviour_at` when the behaviour happened."""

    event_type: Literal["ComplaintRecorded"] = "ComplaintRecorded"
    complainant_key: ComplainantKey = Field(description="Restricted: the keyed hash, never a name.")
    behaviour_at: AwareDatetime = Field(description="When the behaviour complained of happened.")
    category: Category
    agency: Agency = Field(description="The agency that took the complaint.")
    reference: Identifier | None = Field(None, description="That agency's own complaint reference.")
    uprn: Uprn | None = None
    housing_provider: Identifier | None = None
    hate_motivated: bool = Field(False, description="The complainant perceives the behaviour as motivated by hate.")
    vulnerable_victim: bool = Field(False, description="The agency assessed the complainant as vulnerable.")

    _sensitive = model_validator(mode="before")(classmethod(lambda cls, data: _sensitive(data)))

    @model_validator(mode="after")
    def _behaviour_first(self) -> "ComplaintRecorded":
        if self.behaviour_at > self.occurred_at:
            raise ValueError("behaviour_at: the behaviour cannot come after the complaint (occurred_at)")
        return self


class AsbCaseReviewResponded(IncidentEvent):
    """The ASB team met one of a case's statutory response clocks (the incident is the one
    whose complaint met the threshold, as the alert names it)."""

    event_type: Literal["AsbCaseReviewResponded"] = "AsbCaseReviewResponded"
    complainant_key: ComplainantKey
    stage: Literal["decision", "review"] = Field(description="decision: told whether a review is held; review: held.")
    outcome: ShortText | None = None

    _sensitive = model_validator(mode="before")(classmethod(lambda cls, data: _sensitive(data)))


class PremisesFact(IncidentEvent):
    """An enforcement step about one property (the incident is the enforcement case)."""

    uprn: Uprn
    agency: Agency = Field(description="The agency taking the step.")

    _sensitive = model_validator(mode="before")(classmethod(lambda cls, data: _sensitive(data)))


class ClosureNoticeIssued(PremisesFact):
    """A closure notice served (occurred_at): it lasts 24 hours, or 48 when so authorised."""

    event_type: Literal["ClosureNoticeIssued"] = "ClosureNoticeIssued"
    duration_hours: Literal[24, 48]


class ClosureOrderApplied(PremisesFact):
    """An application to the magistrates' court for a closure order, with its hearing."""

    event_type: Literal["ClosureOrderApplied"] = "ClosureOrderApplied"
    hearing_at: AwareDatetime


class ClosureOrderMade(PremisesFact):
    """The court made a closure order (occurred_at) lasting until `ends_at` (three months at most)."""

    event_type: Literal["ClosureOrderMade"] = "ClosureOrderMade"
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _at_most_three_months(self) -> "ClosureOrderMade":
        from dateutil.relativedelta import relativedelta

        if not self.occurred_at < self.ends_at <= self.occurred_at + relativedelta(months=3):
            raise ValueError("ends_at: a closure order lasts more than nothing and at most three months")
        return self


class ClosureOrderExtended(PremisesFact):
    """The court extended the order to `ends_at` (six months in total at most)."""

    event_type: Literal["ClosureOrderExtended"] = "ClosureOrderExtended"
    ends_at: AwareDatetime


class WarrantExecuted(PremisesFact):
    event_type: Literal["WarrantExecuted"] = "WarrantExecuted"
    warrant: ShortText = Field(description="Which warrant, e.g. 's.23 Misuse of Drugs Act 1971'.")


class CasePassedToSafeguarding(IncidentEvent):
    """A property's or a complainant's case handed to safeguarding instead of enforcement."""

    event_type: Literal["CasePassedToSafeguarding"] = "CasePassedToSafeguarding"
    uprn: Uprn | None = None
    complainant_key: ComplainantKey | None = None
    agency: Agency
    reason: ShortText

    _sensitive = model_validator(mode="before")(classmethod(lambda cls, data: _sensitive(data)))

    @model_validator(mode="after")
    def _names_a_case(self) -> "CasePassedToSafeguarding":
        if self.uprn is None and self.complainant_key is None:
            raise ValueError("uprn: name the property (uprn) or the complainant (complainant_key), or both")
        return self


# --- derived facts ----------------------------------------------------------------------------


class Declaration(Frozen):
    """A major incident declared by a person, for their agency (JESIP: a decision, per service)."""

    declared_by: Identifier
    agency: Agency
    at: AwareDatetime


class Methane(Frozen):
    """JESIP M/ETHANE: the shared situation report every responder understands."""

    major_incident: bool = Field(description="M: has a major incident been declared (by a person)?")
    major_incident_statement: ShortText | None = Field(
        None, description="M in words: who declared it, for which agency and when; or 'not declared; level 3 by "
                          "rule <id>'.")
    declarations: tuple[Declaration, ...] = Field((), description="M: every declaration, earliest first.")
    exact_location: ShortText = Field(description="E: ward, address, grid reference or what3words.")
    type: ShortText = Field(description="T: what kind of incident.")
    hazards: tuple[ShortText, ...] = Field(description="H: present and potential hazards.")
    access: ShortText = Field(description="A: routes in and out, rendezvous point.")
    number_of_casualties: Casualties = Field(description="N: number, type and severity of casualties.")
    emergency_services_present: tuple[Agency, ...] = Field(description="E: services present.")
    emergency_services_required: tuple[Agency, ...] = Field(description="E: services required.")


class Related(Frozen):
    """Why another report was taken for the same emergency as the lead (provenance)."""

    incident_id: uuid.UUID
    rule_id: Identifier = Field(description="The correlation rule, or 'operator-link' for an operator's link.")
    distance_m: float | None = Field(None, ge=0, description="From the lead's reported position.")
    interval_s: float | None = Field(None, description="Seconds after (or, negative, before) the lead's report.")


class Detail(StrEnum):
    FULL = "full"
    WARD = "ward"


class EscalationRaised(IncidentEvent):
    event_type: Literal["EscalationRaised"] = "EscalationRaised"
    level: int = Field(ge=1, le=3, description="1 duty officer, 2 partnership tactical, 3 major incident")
    level_name: ShortText
    agencies: tuple[Agency, ...]
    rule_id: Identifier
    rule_set_version: ShortText
    reason: ShortText
    category: Category
    severity: Severity
    ward_code: WardCode
    related_incident_ids: tuple[uuid.UUID, ...] = ()
    methane: Methane
    cap_xml: str | None = Field(None, max_length=200_000, description="CAP 1.2 rendering of this alert.")
    related: tuple[Related, ...] = Field((), description="Provenance of each report correlated into this lead.")
    exercise: ExerciseName | None = Field(None, description="The exercise, when mode is exercise.")
    detail: Detail = Field(Detail.FULL, description="full: exact location; ward: this recipient gets the ward only.")


class EscalationUpdated(IncidentEvent):
    """The picture of an escalated incident changed materially (M/ETHANE); a CAP Update."""

    event_type: Literal["EscalationUpdated"] = "EscalationUpdated"
    sequence: int = Field(ge=1, description="1 for the first update of the incident's chain, then 2, ...")
    level: int = Field(ge=1, le=3, description="The highest level raised so far.")
    level_name: ShortText
    agencies: tuple[Agency, ...] = Field(description="Every agency the chain has reached.")
    changed: tuple[ShortText, ...] = Field(description="What changed: M/ETHANE fields, related reports.")
    rule_set_version: ShortText
    category: Category
    severity: Severity
    ward_code: WardCode
    related_incident_ids: tuple[uuid.UUID, ...] = ()
    related: tuple[Related, ...] = ()
    methane: Methane
    cap_xml: str | None = Field(None, max_length=200_000, description="CAP 1.2 Update referencing the chain.")
    exercise: ExerciseName | None = None
    detail: Detail = Detail.FULL


class EscalationStoodDown(IncidentEvent):
    event_type: Literal["EscalationStoodDown"] = "EscalationStoodDown"
    levels: tuple[int, ...] = Field(description="The levels that were raised and are now stood down.")
    agencies: tuple[Agency, ...]
    reason: ShortText
    final_status: IncidentStatus
    rule_set_version: ShortText
    cap_xml: str | None = Field(
        None, max_length=200_000,
        description="CAP 1.2: an Update with responseType AllClear when resolved or closed; a Cancel when "
                    "unfounded, a false alarm or a duplicate.")
    duplicate_of: uuid.UUID | None = Field(None, description="Stood down as a duplicate report of this lead incident.")
    exercise: ExerciseName | None = None


class TensionLevel(StrEnum):
    NORMAL = "normal"
    WATCH = "watch"  # forward-looking: potential tension reported, or a contentious planned event ahead
    ELEVATED = "elevated"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(TensionLevel).index(self)


class TensionContribution(Frozen):
    category: Category
    weighted: float = Field(ge=0)
    count: Count
    incident_ids: tuple[uuid.UUID, ...] = Field((), max_length=50)
    evidenced: Count = Field(0, description="Reports the police graded evidenced.")
    experienced: Count = Field(0, description="Reports the police graded experienced.")
    potential: Count = Field(0, description="Reports the police graded potential (forward-looking).")


class PlannedEventRole(StrEnum):
    EXPLAINS = "explains"  # its expected uplift is part of the window's baseline
    RAISED = "raised"  # a contentious event that put the ward on watch


class PlannedEventRef(Frozen):
    planned_event_id: uuid.UUID
    name: ShortText
    kind: "PlannedEventKind"
    role: PlannedEventRole


class TensionLevelV1(StrEnum):
    """The levels of schema_version 1 of TensionLevelChanged (no watch)."""

    NORMAL = "normal"
    ELEVATED = "elevated"
    HIGH = "high"
    CRITICAL = "critical"


class _TensionChange(Event):
    event_type: Literal["TensionLevelChanged"] = "TensionLevelChanged"
    topic_key_field: ClassVar[str] = "ward_code"
    ward_code: WardCode
    ward_name: ShortText
    score: float = Field(ge=0, description="Observed weighted count relative to the ward's own baseline.")
    observed: float = Field(ge=0)
    expected: float = Field(ge=0)
    window: ShortText = Field(description="e.g. 24h/1h: window size and step")
    window_start: AwareDatetime
    window_end: AwareDatetime
    top_contributors: tuple[TensionContribution, ...] = Field((), max_length=10)
    planned_events: tuple[PlannedEventRef, ...] = Field(
        (), max_length=20, description="Planned events that explain (baseline uplift) or raised (watch) this level."
    )
    early: bool = Field(False, description="Fired as the reports arrived, before the window closed (speculative).")


class TensionLevelChanged(_TensionChange):
    """A ward's tension level changed. schema_version 2 added the `watch` level (potential
    tension reported, or a contentious planned event ahead); version 1 is still produced
    beside it for the transition (TensionLevelChangedV1, docs/contract.md)."""

    schema_version: Literal[2] = 2
    old_level: TensionLevel
    new_level: TensionLevel

    @model_validator(mode="before")
    @classmethod
    def _read_version_1(cls, data: Any) -> Any:
        """A version-1 record is read as version 2: its levels are version 2's too."""
        if isinstance(data, dict) and data.get("schema_version") == 1:
            return {**data, "schema_version": 2}
        return data


class TensionLevelChangedV1(_TensionChange):
    """schema_version 1, still produced beside version 2 until its transition ends: watch reads
    as normal there, and a change only between normal and watch is not written in version 1."""

    model_config = ConfigDict(title="TensionLevelChanged")
    transition_ends: ClassVar[str] = "2027-03-01"

    schema_version: Literal[1] = 1
    old_level: TensionLevelV1
    new_level: TensionLevelV1

    @classmethod
    def of(cls, current: TensionLevelChanged) -> "TensionLevelChangedV1 | None":
        def v1(level: TensionLevel) -> TensionLevelV1:
            return TensionLevelV1.NORMAL if level is TensionLevel.WATCH else TensionLevelV1(level.value)

        old, new = v1(current.old_level), v1(current.new_level)
        if old is new:
            return None
        return cls(**{**current.model_dump(exclude={"schema_version", "old_level", "new_level"}),
                      "old_level": old, "new_level": new})


# --- the tension calendar: planned events and operator silences (topic tension.calendar) ------


class PlannedEventKind(StrEnum):
    BONFIRE_NIGHT = "bonfire_night"
    FIREWORKS = "fireworks"
    MARCH = "march"
    PROTEST = "protest"
    FOOTBALL_MATCH = "football_match"
    FESTIVAL = "festival"
    RELIGIOUS_OBSERVANCE = "religious_observance"
    OTHER = "other"


def _calendar_floor(data: Any, categories: Any) -> Any:
    """A calendar fact naming an OFFICIAL-SENSITIVE category is itself OFFICIAL-SENSITIVE."""
    if isinstance(data, dict) and any(_FLOOR.get(str(c)) is Classification.OFFICIAL_SENSITIVE for c in categories):
        data = {**data, "classification": Classification.OFFICIAL_SENSITIVE}
    return data


class PlannedEventRegistered(Event):
    """A planned event the tension processor folds into a ward's baseline during its window.
    Sent again with the same planned_event_id, it replaces the earlier registration (an update)."""

    event_type: Literal["PlannedEventRegistered"] = "PlannedEventRegistered"
    topic_key_field: ClassVar[str] = "planned_event_id"
    planned_event_id: uuid.UUID
    kind: PlannedEventKind
    name: ShortText
    wards: tuple[KnownWardCode, ...] = Field(min_length=1, max_length=50, description="The wards, or the route in order.")
    route: bool = Field(False, description="The wards are a route (a march), in order.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    expected_uplift: dict[Category, Annotated[float, Field(ge=0, le=10_000)]] = Field(
        {}, description="Extra reports expected per category in each ward over the event's window."
    )
    contentious: bool = Field(False, description="Puts its wards on watch ahead of its start.")

    @model_validator(mode="after")
    def _window(self) -> "PlannedEventRegistered":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        if self.ends_at - self.starts_at > timedelta(days=31):
            raise ValueError("ends_at: a planned event lasts at most 31 days")
        if len(set(self.wards)) != len(self.wards):
            raise ValueError("wards: each ward at most once")
        return self

    _floor = model_validator(mode="before")(
        classmethod(lambda cls, data: _calendar_floor(data, (data.get("expected_uplift") or {}) if isinstance(data, dict) else ()))
    )


class PlannedEventCancelled(Event):
    event_type: Literal["PlannedEventCancelled"] = "PlannedEventCancelled"
    topic_key_field: ClassVar[str] = "planned_event_id"
    planned_event_id: uuid.UUID
    reason: ShortText | None = None


class TensionSilenced(Event):
    """An operator silences one category in one ward from occurred_at until `until`, with a
    reason; it expires on its own."""

    event_type: Literal["TensionSilenced"] = "TensionSilenced"
    topic_key_field: ClassVar[str] = "silence_id"
    silence_id: uuid.UUID
    ward_code: KnownWardCode
    category: Category
    until: AwareDatetime
    reason: ShortText

    @model_validator(mode="after")
    def _stated_time(self) -> "TensionSilenced":
        if self.until <= self.occurred_at:
            raise ValueError("until: must be after occurred_at")
        if self.until - self.occurred_at > timedelta(days=7):
            raise ValueError("until: a silence lasts at most 7 days")
        return self

    _floor = model_validator(mode="before")(
        classmethod(lambda cls, data: _calendar_floor(data, [data.get("category")] if isinstance(data, dict) else ()))
    )


CALENDAR_FACTS: tuple[type[Event], ...] = (PlannedEventRegistered, PlannedEventCancelled, TensionSilenced)

PlannedEventRef.model_rebuild()


class CaseKind(StrEnum):
    ASB = "asb"
    PREMISES = "premises"


class CaseRoute(StrEnum):
    ENFORCEMENT = "enforcement"
    SAFEGUARDING = "safeguarding"


def case_id_of(kind: "CaseKind | str", subject: str, mode: "Mode | str" = "live") -> uuid.UUID:
    """A case's id: the same complainant (or property) and mode is always the same case."""
    return derived_event_id("case", str(kind), str(mode), subject)


class CaseEntry(Frozen):
    """One complaint or report in a case, as casework counted it (no free text, no people)."""

    incident_id: uuid.UUID
    at: AwareDatetime = Field(description="When the complaint was made or the report recorded.")
    behaviour_at: AwareDatetime | None = None
    agency: Agency | None = None
    category: Category
    qualifies: bool = True
    reason: ShortText | None = Field(None, description="Why it does not count, when it does not.")


class CaseClock(Frozen):
    name: Identifier = Field(description="decision, review, notice_expires, court_deadline, order_expires")
    started_at: AwareDatetime
    due_at: AwareDatetime
    met_at: AwareDatetime | None = None
    working_days: int | None = Field(None, ge=0, description="For a clock counted in working days.")


class CaseworkEvent(Event):
    """A derived casework fact, keyed by its case."""

    topic_key_field: ClassVar[str] = "case_id"
    case_id: uuid.UUID
    classification: Classification = Classification.OFFICIAL_SENSITIVE

    _sensitive = model_validator(mode="before")(classmethod(lambda cls, data: _sensitive(data)))


class AsbCaseReviewThresholdMet(CaseworkEvent):
    """A resident's complaints met the ASB Case Review threshold: act before they have to ask."""

    event_type: Literal["AsbCaseReviewThresholdMet"] = "AsbCaseReviewThresholdMet"
    complainant_key: ComplainantKey
    threshold: int = Field(ge=1)
    threshold_basis: Literal["default", "hate_motivated", "vulnerable_victim"]
    complaints: tuple[CaseEntry, ...]
    met_by_incident_id: uuid.UUID
    route: CaseRoute
    clocks: tuple[CaseClock, ...]
    housing_providers: tuple[Identifier, ...] = ()


class PremisesThresholdReached(CaseworkEvent):
    event_type: Literal["PremisesThresholdReached"] = "PremisesThresholdReached"
    uprn: Uprn
    rule_id: Identifier
    reports: tuple[CaseEntry, ...]
    agencies: tuple[Agency, ...]
    route: CaseRoute
    housing_providers: tuple[Identifier, ...] = ()


class CaseRoutedToSafeguarding(CaseworkEvent):
    """A case already routed to enforcement goes to safeguarding instead."""

    event_type: Literal["CaseRoutedToSafeguarding"] = "CaseRoutedToSafeguarding"
    kind: CaseKind
    uprn: Uprn | None = None
    complainant_key: ComplainantKey | None = None
    because_of_incident_id: uuid.UUID


class CaseClockWarning(CaseworkEvent):
    """A statutory clock falls due soon (or has fallen due unmet)."""

    event_type: Literal["CaseClockWarning"] = "CaseClockWarning"
    kind: CaseKind
    uprn: Uprn | None = None
    clock: CaseClock
    overdue: bool = False


class CaseworkCaseChanged(CaseworkEvent):
    """The whole current picture of one case (the read side keeps the latest per case)."""

    event_type: Literal["CaseworkCaseChanged"] = "CaseworkCaseChanged"
    kind: CaseKind
    complainant_key: ComplainantKey | None = None
    uprn: Uprn | None = None
    route: CaseRoute
    status: Literal["watching", "threshold_met", "closure_in_force", "with_safeguarding"]
    entries: tuple[CaseEntry, ...] = Field((), max_length=500)
    counted: int = Field(ge=0, description="Entries that count now (window, qualification, de-duplication).")
    threshold: int | None = Field(None, ge=1, description="What counts must reach (ASB) or the nearest rule's (premises).")
    clocks: tuple[CaseClock, ...] = ()
    agencies: tuple[Agency, ...] = ()
    housing_providers: tuple[Identifier, ...] = ()
    as_of: AwareDatetime
    case_version: int = Field(ge=1, description="Facts applied to the case so far: a newer picture has a higher one.")


# Who did it comes from the caller's token, never from the body (intake fills these, and refuses
# a body naming anyone else): what a client that replays facts through intake leaves out.
FILLED_FROM_TOKEN: dict[str, tuple[str, ...]] = {
    "*": ("source",), "IncidentAcknowledged": ("acknowledged_by",), "MajorIncidentDeclared": ("declared_by", "agency"),
}


def without_token_fields(body: dict) -> dict:
    """A fact's JSON body as a client posts it to intake: the fields the token decides left out."""
    drop = (*FILLED_FROM_TOKEN["*"], *FILLED_FROM_TOKEN.get(body.get("event_type"), ()))
    return {k: v for k, v in body.items() if k not in drop}


# --- the registry: every event type, listed once; everything else is derived from it ----------

INCIDENT_FACTS: tuple[type[IncidentEvent], ...] = (
    IncidentReported,
    IncidentUpdated,
    IncidentAcknowledged,
    ResponderDispatched,
    ResponderArrived,
    IncidentStatusChanged,
    IncidentLinked,
    NoteAdded,
    MajorIncidentDeclared,
    ComplaintRecorded,
    AsbCaseReviewResponded,
    ClosureNoticeIssued,
    ClosureOrderApplied,
    ClosureOrderMade,
    ClosureOrderExtended,
    WarrantExecuted,
    CasePassedToSafeguarding,
)
CASEWORK_FACTS: tuple[type[IncidentEvent], ...] = INCIDENT_FACTS[-8:]
CASEWORK_ALERTS: tuple[type[CaseworkEvent], ...] = (
    AsbCaseReviewThresholdMet, PremisesThresholdReached, CaseRoutedToSafeguarding, CaseClockWarning,
)
CASEWORK_DERIVED: tuple[type[Event], ...] = (*CASEWORK_ALERTS, CaseworkCaseChanged)
DERIVED: tuple[type[Event], ...] = (
    EscalationRaised, EscalationUpdated, EscalationStoodDown, TensionLevelChanged, *CASEWORK_DERIVED,
)


def event_type_of(cls: type[Event]) -> str:
    return cls.model_fields["event_type"].default


EVENT_TYPES: dict[str, type[Event]] = {event_type_of(cls): cls for cls in (*INCIDENT_FACTS, *DERIVED, *CALENDAR_FACTS)}
INCIDENT_FACT_TYPES: dict[str, type[IncidentEvent]] = {event_type_of(cls): cls for cls in INCIDENT_FACTS}
IncidentFact = Union[INCIDENT_FACTS]
AnyEvent = Annotated[Union[tuple(EVENT_TYPES.values())], Field(discriminator="event_type")]
# Older schema versions still produced beside the current one, each until its `transition_ends`
# (docs/contract.md): `Old.of(current)` writes a current event in the old shape, same event_id.
STILL_PRODUCED: tuple[type[Event], ...] = (ResponderDispatchedV1, TensionLevelChangedV1)


class DeadLetter(Frozen):
    """A record no processor could read, with where it came from and why: scrubbed of people and
    free text (services/shared/scrub.py), the source topic, partition and offset locate the original."""

    event_type: Literal["DeadLetter"] = "DeadLetter"
    schema_version: Literal[1] = SCHEMA_VERSION
    dead_letter_id: uuid.UUID
    service: Identifier
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    error_class: ShortText
    error: str = Field(max_length=4000, description="Why, without the input values the error quoted.")
    key_b64: str | None = None
    value_b64: str | None = Field(None, description="The value with only its structured fields (ids, enums, "
                                  "counts, times); null when it was not a JSON object.")
    removed: tuple[str, ...] = Field((), description="Paths of the value's fields removed (people, free text); "
                                     "'$' when the whole value was.")
    headers: dict[str, str] = {}
    failed_at: AwareDatetime

    def key(self) -> str:
        return self.service

    @classmethod
    def of(
        cls, *, service: str, topic: str, partition: int, offset: int, error: BaseException | str,
        key: bytes | None, value: bytes | None, headers: Any = (),
    ) -> "DeadLetter":
        import base64

        from services.shared.scrub import scrub_error, scrub_headers, scrub_key, scrub_value

        error_class = type(error).__name__ if isinstance(error, BaseException) else "Rejected"
        kept_value, removed = scrub_value(value)
        kept_key = scrub_key(key)
        return cls(
            dead_letter_id=derived_event_id("deadletter", service, topic, partition, offset),
            service=service,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            error_class=error_class,
            error=scrub_error(error)[:4000],
            key_b64=base64.b64encode(kept_key).decode() if kept_key is not None else None,
            value_b64=base64.b64encode(kept_value).decode() if kept_value is not None else None,
            removed=tuple(removed),
            headers=scrub_headers(headers),
            failed_at=utcnow(),
        )
