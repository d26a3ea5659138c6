"""CAP 1.2 renderings of escalation messages (OASIS Common Alerting Protocol), built with lxml.

One incident has one chain: an `Alert` (the first level raised), then `Update`s (a higher
level, or a material change of M/ETHANE), each referencing every earlier message of the
chain; at the end an `Update` with responseType `AllClear` (resolved or closed) or a
`Cancel` (unfounded, a false alarm, or a duplicate of another incident's chain).

By the standard's text, not only its schema: `<sent>` is when Muster decided (the
triggering fact's `recorded_at`, so a replay renders the same message), UTC is written
`-00:00`, `<references>` holds `sender,identifier,sent` for every earlier message,
`<category>` follows the standard's table (flood is `Met`; gas and chemical hazards add
`CBRNE`), `Execute` comes with an `<instruction>`, and `<restriction>` states the handling
caveat of the classification. No report free text goes in; the address, what3words and
coordinates only for a recipient that gets full detail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lxml import etree

from services.escalation.methane import ward_name
from services.escalation.state import IncidentState
from services.shared.events import Agency, Category, Classification, Detail, Hazard, Methane, Mode

NS = "urn:oasis:names:tc:emergency:cap:1.2"
LOCATION_RADIUS_KM = 0.2
BOROUGH_CODE = "E09000030"  # ONS code of the London Borough of Tower Hamlets
BOROUGH_GEOCODE = "ONS local authority district code"
WARD_GEOCODE = "ONS ward code"
ALERT_EXPIRES = timedelta(hours=12)  # an open incident's chain sends an Update long before
ALL_CLEAR_EXPIRES = timedelta(hours=1)

STATUS = {Mode.LIVE: "Actual", Mode.EXERCISE: "Exercise", Mode.TEST: "Test"}
SEVERITY = {5: "Extreme", 4: "Severe", 3: "Moderate", 2: "Minor", 1: "Minor"}
URGENCY = {3: "Immediate", 2: "Immediate", 1: "Expected"}
# CAP 1.2 section 3.2.2 <category>: Geo (geophysical, inc. landslide), Met (meteorological,
# inc. flood), Safety, Security (law enforcement), Rescue, Fire, Health, Env, Transport,
# Infra, CBRNE (chemical, biological, radiological, nuclear, high-yield explosive), Other.
CATEGORY = {
    Category.FIRE: "Fire", Category.FLOOD: "Met", Category.EXPLOSION_OR_COLLAPSE: "Rescue",
    Category.ROAD_TRAFFIC_COLLISION: "Transport", Category.STREET_WELFARE: "Health",
    Category.SAFEGUARDING_CHILD: "Safety", Category.SAFEGUARDING_ADULT: "Safety",
    Category.DOMESTIC_ABUSE: "Safety", Category.OTHER: "Other",
}  # every other category is a matter of community safety and policing: Security
HAZARD_CATEGORY = {
    Hazard.GAS_LEAK: "CBRNE", Hazard.CHEMICAL: "CBRNE", Hazard.FIRE: "Fire", Hazard.FLOODING: "Met",
    Hazard.STRUCTURAL_COLLAPSE: "Rescue", Hazard.ASBESTOS: "Env",
}
CATEGORY_ORDER = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
                  "CBRNE", "Other")
CAVEAT = {
    Classification.OFFICIAL: "OFFICIAL: for the partnership's responding agencies only; do not forward beyond them",
    Classification.OFFICIAL_SENSITIVE: "OFFICIAL-SENSITIVE: need to know only; do not forward or disclose "
                                       "without the owning agency's consent",
}
CERTAIN_SOURCES = {"police", "fire", "ambulance", "cctv", "enforcement_officer", "control_room"}


@dataclass(frozen=True, slots=True)
class Ref:
    """A message already sent: what a later Update or Cancel references."""

    identifier: str
    sent: datetime


@dataclass(frozen=True, slots=True)
class Message:
    """One message of an incident's chain, as CAP says it."""

    event_id: uuid.UUID
    sent: datetime
    msg_type: str  # Alert | Update | Cancel
    response: str | None  # Execute | Assess | AllClear; None for a Cancel (no info block)
    level: int
    level_name: str
    rule_id: str | None
    methane: Methane | None
    references: tuple[Ref, ...] = ()
    note: str | None = None
    agencies: tuple[Agency, ...] = ()


def identifier(event_id: uuid.UUID) -> str:
    return f"urn:uuid:{event_id}"


def cap_time(at: datetime) -> str:
    """CAP's dateTime: whole seconds, UTC written `-00:00` (CAP 1.2 3.3.2: never `Z` or `+00:00`)."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def categories(s: IncidentState) -> list[str]:
    found = {CATEGORY.get(s.category, "Security")} | {HAZARD_CATEGORY[h] for h in s.hazards if h in HAZARD_CATEGORY}
    return [c for c in CATEGORY_ORDER if c in found]


def _el(parent: etree._Element, tag: str, text: object | None = None) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        node.text = str(text)
    return node


def _note(s: IncidentState, extra: str | None) -> str | None:
    parts = []
    if s.mode is Mode.EXERCISE:
        parts.append(f"EXERCISE {s.exercise or ''}".strip() + ": not a real emergency")
    elif s.mode is Mode.TEST:
        parts.append("TEST message: disregard")
    if extra:
        parts.append(extra)
    return "; ".join(parts) or None


def _header(m: Message, s: IncidentState, sender: str) -> etree._Element:
    alert = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _el(alert, "identifier", identifier(m.event_id))
    _el(alert, "sender", sender)
    _el(alert, "sent", cap_time(m.sent))
    _el(alert, "status", STATUS[s.mode])
    _el(alert, "msgType", m.msg_type)
    _el(alert, "source", "Muster escalation")
    _el(alert, "scope", "Restricted")
    _el(alert, "restriction", CAVEAT[s.classification])
    note = _note(s, m.note)
    if note:
        _el(alert, "note", note)
    if m.references:
        _el(alert, "references", " ".join(f"{sender},{r.identifier},{cap_time(r.sent)}" for r in m.references))
    _el(alert, "incidents", " ".join(str(i) for i in (s.incident_id, *s.related_ids)))
    return alert


def _certainty(s: IncidentState) -> str:
    if s.agencies_present or s.corroborated_with or s.related or (
            s.source_kind and s.source_kind.value in CERTAIN_SOURCES):
        return "Observed"
    return "Likely"


def _instruction(m: Message) -> str:
    if m.response == "AllClear":
        return "All clear: stand down the response to this incident; no further action under this alert chain."
    who = ", ".join(a.value for a in m.agencies) or "the duty officer"
    if m.response == "Execute":
        rv = m.methane.access if m.methane else ""
        return (f"{who}: respond at level {m.level} ({m.level_name}); use JESIP joint working and the M/ETHANE "
                f"above; access and rendezvous point: {rv}")
    return f"{who}: assess the incident and decide whether to escalate further"


def _casualties(m: Methane) -> str:
    c = m.number_of_casualties
    return (f"fatalities {c.fatalities}, serious {c.serious}, minor {c.minor}, "
            f"uninjured involved {c.uninjured_involved}")


def _info(alert: etree._Element, s: IncidentState, m: Message, detail: Detail, contact: str) -> None:
    me = m.methane
    info = _el(alert, "info")
    _el(info, "language", "en-GB")
    for c in categories(s):
        _el(info, "category", c)
    _el(info, "event", me.type)
    _el(info, "responseType", m.response)
    _el(info, "urgency", "Past" if m.response == "AllClear" else URGENCY[m.level])
    _el(info, "severity", SEVERITY.get(s.severity or 0, "Unknown"))
    _el(info, "certainty", _certainty(s))
    _el(info, "expires", cap_time(m.sent + (ALL_CLEAR_EXPIRES if m.response == "AllClear" else ALERT_EXPIRES)))
    _el(info, "senderName", "Muster community-safety partnership")
    where = _where(s)
    prefix = "EXERCISE: " if s.mode is Mode.EXERCISE else "TEST: " if s.mode is Mode.TEST else ""
    state = "All clear" if m.response == "AllClear" else f"Level {m.level} {m.level_name}"
    _el(info, "headline", f"{prefix}{state}: {me.type} in {where}"[:160])
    _el(info, "description", "; ".join((
        f"M: {me.major_incident_statement}", f"E: {me.exact_location}", f"T: {me.type}",
        f"H: {', '.join(me.hazards)}", f"A: {me.access}", f"N: {_casualties(me)}",
        f"E: present {', '.join(a.value for a in me.emergency_services_present) or 'none'}; required "
        f"{', '.join(a.value for a in me.emergency_services_required) or 'none'}")))
    _el(info, "instruction", _instruction(m))
    _el(info, "contact", contact)
    params = {
        "level": m.level, "rule": m.rule_id or "none", "M-major-incident": "yes" if me.major_incident else "no",
        "M-statement": me.major_incident_statement, "E-exact-location": me.exact_location, "T-type": me.type,
        "H-hazards": "; ".join(me.hazards), "A-access": me.access, "N-casualties": _casualties(me),
        "E-services-present": ", ".join(a.value for a in me.emergency_services_present) or "none",
        "E-services-required": ", ".join(a.value for a in me.emergency_services_required) or "none",
    }
    if s.exercise:
        params["exercise"] = s.exercise
    for name, value in params.items():
        p = _el(info, "parameter")
        _el(p, "valueName", name)
        _el(p, "value", value)
    _area(info, s, detail)


def _where(s: IncidentState) -> str:
    loc = s.location
    if s.outside_borough:
        return f"{s.outside_borough} (outside the borough)"
    return ward_name(loc.ward_code) if loc else "unknown location"


def _area(info: etree._Element, s: IncidentState, detail: Detail) -> None:
    """The ward (and the borough) the incident is dealt in; a circle only for a full-detail recipient."""
    loc = s.location
    block = _el(info, "area")
    desc = f"{ward_name(loc.ward_code)} ward, London Borough of Tower Hamlets" if loc else "location not yet known"
    if s.outside_borough:
        desc = f"Scene outside the borough ({s.outside_borough}); dealt with in {desc}"
    _el(block, "areaDesc", desc[:200])
    if loc and detail is Detail.FULL and loc.lat is not None and loc.lon is not None:
        _el(block, "circle", f"{loc.lat:.5f},{loc.lon:.5f} {LOCATION_RADIUS_KM}")
    geocode = _el(block, "geocode")
    _el(geocode, "valueName", BOROUGH_GEOCODE)
    _el(geocode, "value", BOROUGH_CODE)
    if loc is not None:
        geocode = _el(block, "geocode")
        _el(geocode, "valueName", WARD_GEOCODE)
        _el(geocode, "value", loc.ward_code)


def render(s: IncidentState, m: Message, *, sender: str, contact: str, detail: Detail = Detail.FULL) -> str:
    """The CAP 1.2 XML of one message, for a recipient of the given detail."""
    alert = _header(m, s, sender)
    if m.response is not None and m.methane is not None:
        _info(alert, s, m, detail, contact)
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8").decode()
