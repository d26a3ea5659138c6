"""Who may see an incident and its people: the one definition, for reads (services/query)
and writes (services/intake).

- OFFICIAL incidents: every authenticated caller.
- OFFICIAL-SENSITIVE incidents: the cleared roles (safeguarding, admin) and the agencies that
  own the incident (its reporting agency and every agency required). The read side also
  asks for a stated reason (X-Access-Reason) before it shows one.
- People (restricted fields): only the operational roles (control room, responder,
  safeguarding, admin) of an owning agency.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.shared.auth import Principal, Role
from services.shared.events import Classification

SENSITIVE = Classification.OFFICIAL_SENSITIVE.value
CLEARED_ROLES: frozenset[Role] = frozenset({Role.SAFEGUARDING, Role.ADMIN})
OPERATIONAL_ROLES: frozenset[Role] = frozenset({Role.CONTROL_ROOM, Role.RESPONDER, Role.SAFEGUARDING, Role.ADMIN})


def owns(principal: Principal, source_agency: str | None, agencies_required: Iterable[str] | None) -> bool:
    """The caller's agency reported the incident or is required at it."""
    agency = principal.agency.value
    return agency == source_agency or agency in set(agencies_required or ())


def may_see_incident(principal: Principal, classification: str, source_agency: str | None, agencies_required) -> bool:
    """The incident exists for this caller (without it: 404, as for an id that does not exist)."""
    if classification != SENSITIVE:
        return True
    return principal.role in CLEARED_ROLES or owns(principal, source_agency, agencies_required)


def may_see_people(principal: Principal, source_agency: str | None, agencies_required) -> bool:
    return principal.role in OPERATIONAL_ROLES and owns(principal, source_agency, agencies_required)
