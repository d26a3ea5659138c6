"""Who may post what: the one table of roles and the incident facts each may post.

Derived facts (escalations, tension alerts) are published by the processors only, so no
role may post them through intake.
"""

from __future__ import annotations

from enum import StrEnum

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

# Casework (docs/casework.md): complaints, the ASB Case Review's responses, closure powers.
_CLOSURE = frozenset({"ClosureNoticeIssued", "ClosureOrderApplied", "ClosureOrderMade", "ClosureOrderExtended",
                      "WarrantExecuted"})
_CASEWORK = frozenset({"ComplaintRecorded", "AsbCaseReviewResponded", "CasePassedToSafeguarding"}) | _CLOSURE
_EVERY_FACT = _EVERY_FACT | _CASEWORK

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
    ) | _CASEWORK,
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
            "ComplaintRecorded",
            "CasePassedToSafeguarding",
            "ClosureNoticeIssued",
            "ClosureOrderApplied",
            "WarrantExecuted",
        }
    ),
    Role.SAFEGUARDING: frozenset(
        {"IncidentReported", "IncidentUpdated", "IncidentStatusChanged", "NoteAdded", "ComplaintRecorded",
         "CasePassedToSafeguarding"}
    ),
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


# --- what a caller may write to an existing incident -------------------------------------------
#
# Decided against intake's incident registry (registry.py), never the status store (it may lag).
# A caller who may not see the incident (services/shared/access.py) gets 404, byte for byte the
# answer for an id that does not exist; one who may see it but not make that change gets 403.


class Relation(StrEnum):
    """The caller's relation to an incident. Admin and the control room (the partnership's: the
    council's, CONTROL_ROOM_AGENCY) win over the agency's relation; the others are by agency (the
    reporting agency and every agency required own the incident), another agency's control room
    included: it is its agency's, never the partnership's."""

    OWNER = "owning agency"
    OTHER = "other agency"
    CONTROL_ROOM = "control room"
    ADMIN = "admin"


_OWNERS = frozenset({Relation.OWNER, Relation.CONTROL_ROOM, Relation.ADMIN})
# The partnership's control room, which coordinates every agency's incidents, is the council's. A
# control_room token of another agency (a housing provider's, a voluntary partner's, a police force
# control room's) had the same powers: it raised a police incident to OFFICIAL-SENSITIVE and so hid it
# from the council's control room, or stood it down (red-team probe, 2026-12-04).
CONTROL_ROOM_AGENCY = Agency.COUNCIL
# Declaring a major incident: the control rooms and responders of the emergency services and the council.
DECLARING_ROLES = frozenset({Role.CONTROL_ROOM, Role.RESPONDER})
DECLARING_AGENCIES = frozenset({Agency.POLICE, Agency.FIRE, Agency.AMBULANCE, Agency.COUNCIL})

# event type -> the relations that may post it (besides the role table MAY_POST above).
MAY_WRITE: dict[str, frozenset[Relation]] = {
    "IncidentUpdated": _OWNERS,
    "IncidentAcknowledged": _OWNERS,
    "ResponderDispatched": _OWNERS,
    "ResponderArrived": _OWNERS,
    "IncidentStatusChanged": _OWNERS,
    "IncidentLinked": _OWNERS,
    "NoteAdded": frozenset(Relation),
    "MajorIncidentDeclared": frozenset(Relation),  # by role and agency: may_declare
    # Casework: any agency that can see the incident may record a resident's complaint about it,
    # or pass its case to safeguarding; the steps of an enforcement case are its owners'.
    "ComplaintRecorded": frozenset(Relation),
    "CasePassedToSafeguarding": frozenset(Relation),
    "AsbCaseReviewResponded": _OWNERS,
    **{t: _OWNERS for t in sorted(_CLOSURE)},
}

# Field-level rules: removing an agency from agencies_required, and changing people, are for
# the control room, admins and the owning agencies' operational roles.
OPERATIONAL_ROLES = frozenset({Role.CONTROL_ROOM, Role.RESPONDER, Role.SAFEGUARDING, Role.ADMIN})


def relation(principal: Principal, owners: frozenset[str]) -> Relation:
    if principal.role is Role.ADMIN:
        return Relation.ADMIN
    if principal.role is Role.CONTROL_ROOM and principal.agency is CONTROL_ROOM_AGENCY:
        return Relation.CONTROL_ROOM
    return Relation.OWNER if principal.agency.value in owners else Relation.OTHER


def acts_for_the_partnership(principal: Principal) -> bool:
    """The partnership's control room (the council's) or an admin, whatever the incident: records
    dispatches and arrivals of any agency's responders. Another agency's control room acts as its
    agency (red-team probe, 2026-12-06: a voluntary partner's control room logged police and fire
    arrivals, which escalation takes as those agencies on scene)."""
    return relation(principal, frozenset()) in (Relation.CONTROL_ROOM, Relation.ADMIN)


def may_declare(principal: Principal) -> bool:
    return principal.role in DECLARING_ROLES and principal.agency in DECLARING_AGENCIES


def may_write(principal: Principal, event_type: str, rel: Relation) -> bool:
    """Role table, relation table and, for a declaration, the declaring roles and agencies."""
    if not may_post(principal.role, event_type):
        return False
    if event_type == "MajorIncidentDeclared" and not may_declare(principal):
        return False
    return rel in MAY_WRITE.get(event_type, frozenset())


def privileged(principal: Principal, rel: Relation) -> bool:
    """May remove an agency from agencies_required and change people."""
    return rel in (Relation.CONTROL_ROOM, Relation.ADMIN) or (
        rel is Relation.OWNER and principal.role in OPERATIONAL_ROLES
    )


def may_report_people(principal: Principal) -> bool:
    """May name people in a report: the reporter's agency owns the incident it reports, so this is
    `privileged` for an owning agency (an enforcement officer, a CCTV operator or an analyst may not)."""
    return privileged(principal, relation(principal, frozenset({principal.agency.value})))


def may_change_calendar_item(principal: Principal, agency: str) -> bool:
    """May update or cancel a planned event or silence `agency` registered: that agency, the control
    room and admins (services/intake/calendar.py)."""
    return relation(principal, frozenset({agency})) in _OWNERS


def may_raise_classification(principal: Principal, rel: Relation) -> bool:
    """May post a fact that raises the incident's classification (the fact's own, or its category's
    floor): that narrows who may see the incident (services/shared/access.py), so it is for the
    control room, admins and the owning agencies, never another agency's caller, whatever its role
    (who could otherwise hide an incident from its control room, and lock it out of standing down).
    Another agency's safeguarding officer, cleared to read every sensitive incident, could (red-team
    probe, 2026-12-06): it asks an owning agency or the control room instead."""
    return rel in _OWNERS


def write_table() -> str:
    """docs/intake.md's write-permission table, generated from the rules above."""
    types = [t for t in MAY_WRITE]
    head = "| role | relation | " + " | ".join(types) + " | remove an agency, change people | raise the classification |"
    rows = [head, "| --- | --- | " + " | ".join("---" for _ in types) + " | --- | --- |"]
    for role in Role:
        if role is Role.ADMIN:
            rels = [(Relation.ADMIN, list(Agency), "")]
        elif role is Role.CONTROL_ROOM:  # the partnership's, then another agency's (by its agency)
            others = [a for a in Agency if a is not CONTROL_ROOM_AGENCY]
            rels = [(Relation.CONTROL_ROOM, [CONTROL_ROOM_AGENCY], f" ({CONTROL_ROOM_AGENCY.value})"),
                    *((rel, others, " (another agency's control room)") for rel in (Relation.OWNER, Relation.OTHER))]
        else:
            rels = [(rel, list(Agency), "") for rel in (Relation.OWNER, Relation.OTHER)]
        for rel, agencies, note in rels:
            declaring = [a.value for a in agencies if may_write(Principal("x", role, a), "MajorIncidentDeclared", rel)]
            caller = Principal("x", role, agencies[0])
            cells = []
            for t in types:
                if t == "MajorIncidentDeclared":
                    cells.append(", ".join(declaring) if declaring else "no")
                else:
                    cells.append("yes" if may_write(caller, t, rel) else "no")
            cells.append("yes" if privileged(caller, rel) else "no")
            cells.append("yes" if may_raise_classification(caller, rel) else "no")
            rows.append(f"| `{role.value}` | {rel.value}{note} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
