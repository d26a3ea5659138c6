"""JESIP M/ETHANE from an incident's state: the situation report every responder reads.

Every line says only what is so. M is a person's decision, per service: it is "yes" only
after a `MajorIncidentDeclared`, naming who declared it, for which agency and when; a
level 3 reached by a rule says "not declared; level 3 by rule <id>". A is "not yet known"
until someone on scene reports routes or a rendezvous point. Nothing is made up.

`methane(..., detail=WARD)` is the same report for a recipient that gets the ward only:
no address, what3words, coordinates or access routes.
"""

from __future__ import annotations

from services.escalation.state import IncidentState
from services.shared.events import Agency, Detail, Location, Methane
from services.shared.wards import wards

NONE_REPORTED = "none reported"
NOT_YET_KNOWN = "not yet known"
WARD_ONLY_ACCESS = "given to the responding agencies"


def ward_name(code: str | None) -> str:
    ward = wards().get(code) if code else None
    return ward.name if ward else (code or "unknown ward")


def area(loc: Location | None) -> str:
    """The ward: what every recipient may know."""
    if loc is None:
        return "location not yet known"
    return f"{ward_name(loc.ward_code)} ward ({loc.ward_code})"


def _place(loc: Location) -> list[str]:
    parts = [area(loc)]
    if loc.address:
        parts.append(loc.address)
    if loc.what3words:
        parts.append("///" + loc.what3words.removeprefix("///"))
    if loc.lat is not None and loc.lon is not None:
        parts.append(f"{loc.lat:.5f},{loc.lon:.5f}")
    return parts


def exact_location(s: IncidentState, detail: Detail = Detail.FULL) -> str:
    """E: the scene as reported; a scene outside the borough says so (the borough's place is then where
    it deals with it); where a casualty presented is said apart, never taken for the scene."""
    loc = s.location
    full = loc is not None and detail is Detail.FULL
    text = ", ".join(_place(loc)) if full else area(loc)
    if s.outside_borough:
        text = f"scene outside the borough ({s.outside_borough}); in the borough: {text}"
    if s.presented_at is not None:
        where = ", ".join(_place(s.presented_at)) if full else area(s.presented_at)
        text += f"; casualty presented at {where}"
    return text[:200]


def incident_type(s: IncidentState) -> str:
    what = (s.category.value if s.category else "unknown").replace("_", " ")
    return f"{what}, severity {s.severity or '?'} of 5"


def access(s: IncidentState, detail: Detail = Detail.FULL) -> str:
    a = s.access
    if a is None:
        return NOT_YET_KNOWN
    if detail is Detail.WARD:
        return WARD_ONLY_ACCESS
    parts = []
    if a.routes:
        parts.append(f"routes: {a.routes}")
    parts.append(f"rendezvous point: {a.rendezvous_point or NOT_YET_KNOWN}")
    return "; ".join(parts)[:200]


def major_incident_statement(s: IncidentState, level: int, rule_id: str | None) -> str:
    if s.declarations:
        said = "; ".join(f"declared by {d.declared_by} ({d.agency.value}) at {d.at.strftime('%Y-%m-%d %H:%M UTC')}"
                         for d in s.declarations)
        return f"yes: {said}"[:200]
    if level >= 3 and rule_id:
        return f"not declared; level 3 by rule {rule_id}"
    return "not declared"


def methane(s: IncidentState, level: int, required: tuple[Agency, ...], rule_id: str | None = None,
            detail: Detail = Detail.FULL) -> Methane:
    """M/ETHANE at the moment of a message about level `level` (reached by `rule_id`)."""
    wanted = {*required, *s.agencies_required}
    return Methane(
        major_incident=bool(s.declarations),
        major_incident_statement=major_incident_statement(s, level, rule_id),
        declarations=s.declarations,
        exact_location=exact_location(s, detail),
        type=incident_type(s),
        hazards=tuple(h.value.replace("_", " ") for h in s.hazards) or (NONE_REPORTED,),
        access=access(s, detail),
        number_of_casualties=s.casualties,
        emergency_services_present=s.agencies_present,
        emergency_services_required=tuple(a for a in Agency if a in wanted),
    )
