"""JESIP M/ETHANE from an incident's state: the situation report every responder reads."""

from __future__ import annotations

from services.escalation.state import IncidentState
from services.shared.events import Agency, Methane
from services.shared.wards import wards

NONE_REPORTED = "none reported"


def ward_name(code: str) -> str:
    ward = wards().get(code)
    return ward.name if ward else code


def exact_location(s: IncidentState) -> str:
    loc = s.location
    if loc is None:
        return "location not yet known"
    parts = [f"{ward_name(loc.ward_code)} ward ({loc.ward_code})"]
    if loc.address:
        parts.append(loc.address)
    if loc.what3words:
        parts.append("///" + loc.what3words.removeprefix("///"))
    if loc.lat is not None and loc.lon is not None:
        parts.append(f"{loc.lat:.5f},{loc.lon:.5f}")
    return ", ".join(parts)[:200]


def incident_type(s: IncidentState) -> str:
    what = (s.category.value if s.category else "unknown").replace("_", " ")
    return f"{what}, severity {s.severity or '?'} of 5"


def access(s: IncidentState) -> str:
    loc = s.location
    if loc is None:
        return "rendezvous point to be agreed by the first agency on scene"
    target = loc.what3words and "///" + loc.what3words.removeprefix("///") or loc.address or ward_name(loc.ward_code)
    return f"approach {target}; rendezvous point to be agreed by the first agency on scene"[:200]


def methane(s: IncidentState, level: int, required: tuple[Agency, ...]) -> Methane:
    """M/ETHANE at the moment of an escalation to `level` (3 is a declared major incident)."""
    wanted = {*required, *s.agencies_required}
    return Methane(
        major_incident=s.major_declared or level >= 3,
        exact_location=exact_location(s),
        type=incident_type(s),
        hazards=tuple(h.value.replace("_", " ") for h in s.hazards) or (NONE_REPORTED,),
        access=access(s),
        number_of_casualties=s.casualties,
        emergency_services_present=s.agencies_present,
        emergency_services_required=tuple(a for a in Agency if a in wanted),
    )
