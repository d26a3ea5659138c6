"""Who may post what: the one table of roles and the incident facts each may post.

Derived facts (escalations, tension alerts) are published by the processors only, so no
role may post them through intake.
"""

from __future__ import annotations

from services.shared.auth import Principal, Role
from services.shared.events import Agency, SourceKind

_EVERY_FACT = frozenset(
    {
        "IncidentReported",
        "IncidentUpdated",
        "IncidentAcknowledged",
        "ResponderDispatched",
        "ResponderArrived",
        "IncidentStatusChanged",
        "IncidentLinked",
        "NoteAdded",
        "MajorIncidentDeclared",
    }
)

# The tension calendar (topic tension.calendar): planned events are registered, updated and
# cancelled by the control room or an analyst; a silence is an operator's, in the control room.
_PLANNED = frozenset({"PlannedEventRegistered", "PlannedEventCancelled"})
_CALENDAR = _PLANNED | {"TensionSilenced"}

# role -> the event types it may post. Keep docs/intake.md's roles table in step.
MAY_POST: dict[Role, frozenset[str]] = {
    Role.CONTROL_ROOM: _EVERY_FACT | _CALENDAR,
    Role.ADMIN: _EVERY_FACT | _CALENDAR,
    Role.ENFORCEMENT_OFFICER: frozenset(
        {"IncidentReported", "IncidentUpdated", "IncidentAcknowledged", "ResponderArrived", "NoteAdded"}
    ),
    Role.CCTV_OPERATOR: frozenset({"IncidentReported", "IncidentUpdated", "NoteAdded"}),
    Role.RESPONDER: frozenset(
        {
            "IncidentReported",
            "IncidentUpdated",
            "IncidentAcknowledged",
            "ResponderDispatched",
            "ResponderArrived",
            "IncidentStatusChanged",
            "NoteAdded",
            "MajorIncidentDeclared",
        }
    ),
    Role.SAFEGUARDING: frozenset({"IncidentReported", "IncidentUpdated", "IncidentStatusChanged", "NoteAdded"}),
    Role.ANALYST: _PLANNED,
}

# The `source.kind` intake fills in when a request omits `source`.
ROLE_SOURCE_KIND: dict[Role, SourceKind | None] = {
    Role.CONTROL_ROOM: SourceKind.CONTROL_ROOM,
    Role.ENFORCEMENT_OFFICER: SourceKind.ENFORCEMENT_OFFICER,
    Role.CCTV_OPERATOR: SourceKind.CCTV,
    Role.ADMIN: SourceKind.SYSTEM,
    Role.ANALYST: SourceKind.SYSTEM,
    Role.RESPONDER: None,  # from the agency
    Role.SAFEGUARDING: None,
}
AGENCY_SOURCE_KIND: dict[Agency, SourceKind] = {
    Agency.COUNCIL: SourceKind.CONTROL_ROOM,
    Agency.POLICE: SourceKind.POLICE,
    Agency.FIRE: SourceKind.FIRE,
    Agency.AMBULANCE: SourceKind.AMBULANCE,
    Agency.HOUSING: SourceKind.HOUSING,
    Agency.VOLUNTARY: SourceKind.VOLUNTARY,
}


def may_post(role: Role, event_type: str) -> bool:
    return event_type in MAY_POST[role]


def forbidden_reason(principal: Principal, event_type: str) -> str | None:
    """None when the principal may post this event type, else why not."""
    if may_post(principal.role, event_type):
        return None
    return f"role {principal.role.value} may not post {event_type}"


def source_kind(principal: Principal) -> SourceKind:
    return ROLE_SOURCE_KIND[principal.role] or AGENCY_SOURCE_KIND[principal.agency]
