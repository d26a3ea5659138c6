"""One incident's life as a sequence of events, with a clock that only moves forward.

Every id and every random choice comes from the `random.Random` handed in, so the same
seed tells the same story byte for byte: no uuid4, no wall clock.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from services.shared import events as ev
from services.shared.events import Agency, IncidentStatus, Mode, SourceKind
from services.shared.wards import Ward
from services.simulator.model import CALLSIGN_PREFIX, SOURCE_AGENCY, SOURCE_ID_PREFIX


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID made of the generator's bits: random-looking, reproducible."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def minutes(rng: random.Random, low: float, high: float) -> timedelta:
    """A whole number of seconds between low and high minutes."""
    return timedelta(seconds=round(rng.uniform(low, high) * 60))


def source(rng: random.Random, kind: SourceKind, number: int | None = None) -> ev.Source:
    n = number if number is not None else rng.randint(1, 60)
    return ev.Source(kind=kind, id=f"{SOURCE_ID_PREFIX[kind]}{n:03d}", agency=SOURCE_AGENCY[kind])


def callsign(rng: random.Random, agency: Agency) -> str:
    return f"{CALLSIGN_PREFIX[agency]}{rng.randint(1, 99):02d}"


def near(rng: random.Random, ward: Ward, spread: float = 0.004) -> tuple[float, float]:
    """A point near the ward's centre (0.004 degrees is about 300-450 m here)."""
    return round(ward.lat + rng.uniform(-spread, spread), 5), round(ward.lon + rng.uniform(-spread, spread), 5)


SIMULATED_EXERCISE = "simulated exercise"  # an exercise-mode report names its exercise (FeedConfig.exercise)


class Story:
    """Builds one incident's events in order. `at` is when the next event is recorded."""

    def __init__(self, rng: random.Random, mode: Mode, incident_id: uuid.UUID | None = None) -> None:
        self.rng = rng
        self.mode = mode
        self.exercise = SIMULATED_EXERCISE if mode is Mode.EXERCISE else None  # the generator names it
        self.incident_id = incident_id or new_uuid(rng)
        self.events: list[ev.IncidentEvent] = []
        self.classification = ev.Classification.OFFICIAL
        self.at: datetime | None = None
        self.operator = source(rng, SourceKind.CONTROL_ROOM, rng.randint(1, 24))
        self.callsigns: dict[Agency, str] = {}

    # --- the first report ------------------------------------------------------------------
    def report(self, *, occurred_at: datetime, recorded_at: datetime, source: ev.Source,
               **fields) -> ev.IncidentReported:
        self.at = recorded_at
        event = self._add(ev.IncidentReported, occurred_at=occurred_at, source=source, exercise=self.exercise,
                          **fields)
        self.classification = event.classification
        return event

    # --- what follows ------------------------------------------------------------------------
    def _add(self, cls: type[ev.IncidentEvent], *, occurred_at: datetime | None = None,
             source: ev.Source | None = None, **fields) -> ev.IncidentEvent:
        assert self.at is not None, "a story starts with its report"
        event = cls(
            event_id=new_uuid(self.rng),
            incident_id=self.incident_id,
            occurred_at=occurred_at or self.at,
            recorded_at=self.at,
            source=source or self.operator,
            classification=self.classification,
            mode=self.mode,
            **fields,
        )
        self.events.append(event)
        return event

    def after(self, delay: timedelta) -> "Story":
        assert self.at is not None
        self.at += max(delay, timedelta(0))
        return self

    def acknowledge(self, delay: timedelta) -> ev.IncidentEvent:
        self.after(delay)
        return self._add(ev.IncidentAcknowledged, acknowledged_by=self.operator.id)

    def status(self, delay: timedelta, status: IncidentStatus, reason: str | None = None) -> ev.IncidentEvent:
        self.after(delay)
        return self._add(ev.IncidentStatusChanged, status=status, reason=reason)

    def unit(self, agency: Agency) -> str:
        if agency not in self.callsigns:
            self.callsigns[agency] = callsign(self.rng, agency)
        return self.callsigns[agency]

    def responder(self, agency: Agency) -> ev.Source:
        kind = SourceKind.ENFORCEMENT_OFFICER if agency is Agency.COUNCIL else SourceKind(agency.value)
        return source(self.rng, kind)

    def dispatch(self, delay: timedelta, agency: Agency, eta_minutes: int | None = None,
                 unit: str | None = None) -> ev.IncidentEvent:
        self.after(delay)
        expected = None if eta_minutes is None else self.at + timedelta(minutes=eta_minutes)
        return self._add(ev.ResponderDispatched, source=self.operator, agency=agency,
                         callsign=unit or self.unit(agency), expected_arrival_at=expected)

    def arrive(self, delay: timedelta, agency: Agency, unit: str | None = None) -> ev.IncidentEvent:
        self.after(delay)
        return self._add(ev.ResponderArrived, source=self.responder(agency), agency=agency,
                         callsign=unit or self.unit(agency))

    def update(self, delay: timedelta, source: ev.Source | None = None, **fields) -> ev.IncidentEvent:
        self.after(delay)
        return self._add(ev.IncidentUpdated, source=source, **fields)

    def note(self, delay: timedelta, text: str, source: ev.Source | None = None) -> ev.IncidentEvent:
        self.after(delay)
        return self._add(ev.NoteAdded, source=source, text=text)

    def link(self, delay: timedelta, lead: uuid.UUID, reason: str) -> ev.IncidentEvent:
        self.after(delay)
        return self._add(ev.IncidentLinked, lead_incident_id=lead, reason=reason)

    def declare_major(self, delay: timedelta, by: ev.Source, reason: str) -> ev.IncidentEvent:
        self.after(delay)
        return self._add(ev.MajorIncidentDeclared, source=by, declared_by=by.id, agency=by.agency or Agency.COUNCIL,
                         reason=reason)
