"""Valid events with sensible defaults, for tests. Override any field by keyword."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from services.shared import events as ev

T0 = datetime(2026, 11, 20, 21, 30, tzinfo=timezone.utc)
POPLAR = "E05009328"
WHITECHAPEL = "E05009336"
BOW_EAST = "E05009319"


def source(kind: str = "control_room", id: str = "op-17", agency: str | None = "council") -> ev.Source:  # noqa: A002
    return ev.Source(kind=kind, id=id, agency=agency)


def reported(**overrides) -> ev.IncidentReported:
    fields = dict(
        incident_id=uuid.uuid4(),
        occurred_at=T0,
        recorded_at=T0 + timedelta(seconds=5),
        source=source(),
        category="antisocial_behaviour",
        severity=2,
        location=ev.Location(ward_code=BOW_EAST, lat=51.535, lon=-0.02),
        description="Group shouting outside the shops",
    )
    fields.update(overrides)
    if fields.get("mode") in ("exercise", ev.Mode.EXERCISE):
        fields.setdefault("exercise", "test drill")
    return ev.IncidentReported(**fields)


def fact(cls: type[ev.IncidentEvent], incident_id: uuid.UUID, at: datetime = T0, **fields) -> ev.IncidentEvent:
    base = dict(incident_id=incident_id, occurred_at=at, recorded_at=at, source=source())
    base.update(fields)
    return cls(**base)


def methane(**overrides) -> ev.Methane:
    fields = dict(
        major_incident=True, exact_location="Poplar, E05009331", type="fire", hazards=("smoke",),
        access="Via East India Dock Road", number_of_casualties=ev.Casualties(serious=2),
        emergency_services_present=(), emergency_services_required=("fire", "police", "ambulance"),
    )
    fields.update(overrides)
    return ev.Methane(**fields)


def raised(incident_id: uuid.UUID, level: int = 3, **overrides) -> ev.EscalationRaised:
    fields = dict(
        event_id=ev.derived_event_id(incident_id, level, "raised"), incident_id=incident_id, occurred_at=T0,
        source=source("system", "escalation", None), level=level, level_name="major incident",
        agencies=("council", "fire", "police", "ambulance"), rule_id="catastrophic-emergency",
        rule_set_version="2026.11.1", reason="severity 5 fire", category="fire", severity=5,
        ward_code=POPLAR, methane=methane(), cap_xml="<alert/>",
    )
    fields.update(overrides)
    return ev.EscalationRaised(**fields)


def stood_down(incident_id: uuid.UUID, **overrides) -> ev.EscalationStoodDown:
    fields = dict(
        event_id=ev.derived_event_id(incident_id, "stood-down"), incident_id=incident_id, occurred_at=T0,
        source=source("system", "escalation", None), levels=(3,), agencies=("council", "fire", "police", "ambulance"),
        reason="resolved", final_status="resolved", rule_set_version="2026.11.1",
    )
    fields.update(overrides)
    return ev.EscalationStoodDown(**fields)
