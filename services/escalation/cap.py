"""CAP 1.2 renderings of escalations (OASIS Common Alerting Protocol), built with lxml.

An escalation is an `Alert` (the first level raised) or an `Update` that references the
alerts before it; a stand-down is a `Cancel` that references every alert raised. The
identifier derives from the event's deterministic id, so a replay renders the same
identifier. No free text from reports goes into CAP: only categories, ward, location,
counts and the rule that fired.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from services.escalation.methane import ward_name
from services.escalation.state import IncidentState
from services.shared.events import Category, Methane, Mode

NS = "urn:oasis:names:tc:emergency:cap:1.2"
LOCATION_RADIUS_KM = 0.2

STATUS = {Mode.LIVE: "Actual", Mode.EXERCISE: "Exercise", Mode.TEST: "Test"}
SEVERITY = {5: "Extreme", 4: "Severe", 3: "Moderate", 2: "Minor", 1: "Minor"}
URGENCY = {3: "Immediate", 2: "Immediate", 1: "Expected"}
CATEGORY = {
    Category.FIRE: "Fire", Category.FLOOD: "Geo", Category.EXPLOSION_OR_COLLAPSE: "Rescue",
    Category.ROAD_TRAFFIC_COLLISION: "Transport", Category.STREET_WELFARE: "Health",
    Category.SAFEGUARDING_CHILD: "Safety", Category.SAFEGUARDING_ADULT: "Safety",
    Category.DOMESTIC_ABUSE: "Safety", Category.OTHER: "Other",
}  # every other category is a matter of community safety and policing: Security
CERTAIN_SOURCES = {"police", "fire", "ambulance", "cctv", "enforcement_officer", "control_room"}


@dataclass(frozen=True, slots=True)
class Ref:
    """An alert already sent: what a later Update or Cancel references."""

    identifier: str
    sent: datetime


def identifier(event_id: uuid.UUID) -> str:
    return f"urn:uuid:{event_id}"


def cap_time(at: datetime) -> str:
    """CAP's dateTime: whole seconds with an explicit UTC offset (never `Z`)."""
    return at.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _el(parent: etree._Element, tag: str, text: object | None = None) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        node.text = str(text)
    return node


def _header(event_id: uuid.UUID, sender: str, sent: datetime, s: IncidentState, msg_type: str,
            refs: tuple[Ref, ...], note: str | None) -> etree._Element:
    alert = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _el(alert, "identifier", identifier(event_id))
    _el(alert, "sender", sender)
    _el(alert, "sent", cap_time(sent))
    _el(alert, "status", STATUS[s.mode])
    _el(alert, "msgType", msg_type)
    _el(alert, "source", "Muster escalation")
    _el(alert, "scope", "Restricted")
    _el(alert, "restriction", f"Partnership responders only; {s.classification.value}")
    if note:
        _el(alert, "note", note)
    if refs:
        _el(alert, "references", " ".join(f"{sender},{r.identifier},{cap_time(r.sent)}" for r in refs))
    _el(alert, "incidents", str(s.incident_id))
    return alert


def _certainty(s: IncidentState) -> str:
    if s.agencies_present or s.corroborated_with or (s.source_kind and s.source_kind.value in CERTAIN_SOURCES):
        return "Observed"
    return "Likely"


def _info(alert: etree._Element, s: IncidentState, level: int, level_name: str, rule_id: str,
          m: Methane) -> None:
    info = _el(alert, "info")
    _el(info, "language", "en-GB")
    _el(info, "category", CATEGORY.get(s.category, "Security"))
    _el(info, "event", m.type)
    _el(info, "responseType", "Execute" if level >= 2 else "Assess")
    _el(info, "urgency", URGENCY[level])
    _el(info, "severity", SEVERITY.get(s.severity or 0, "Unknown"))
    _el(info, "certainty", _certainty(s))
    _el(info, "senderName", "Muster community-safety partnership")
    where = ward_name(s.location.ward_code) if s.location else "unknown location"
    _el(info, "headline", f"Level {level} {level_name}: {m.type} in {where}")
    params = {
        "level": level, "rule": rule_id, "M-major-incident": "yes" if m.major_incident else "no",
        "E-exact-location": m.exact_location, "T-type": m.type, "H-hazards": "; ".join(m.hazards),
        "A-access": m.access,
        "N-casualties": (f"fatalities {m.number_of_casualties.fatalities}, serious {m.number_of_casualties.serious}, "
                         f"minor {m.number_of_casualties.minor}"),
        "E-services-present": ", ".join(a.value for a in m.emergency_services_present) or "none",
        "E-services-required": ", ".join(a.value for a in m.emergency_services_required) or "none",
    }
    for name, value in params.items():
        p = _el(info, "parameter")
        _el(p, "valueName", name)
        _el(p, "value", value)
    if s.location:
        area = _el(info, "area")
        _el(area, "areaDesc", f"{where} ward")
        if s.location.lat is not None and s.location.lon is not None:
            _el(area, "circle", f"{s.location.lat:.5f},{s.location.lon:.5f} {LOCATION_RADIUS_KM}")
        geocode = _el(area, "geocode")
        _el(geocode, "valueName", "ONS ward code")
        _el(geocode, "value", s.location.ward_code)


def _xml(alert: etree._Element) -> str:
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8").decode()


def alert_xml(s: IncidentState, *, event_id: uuid.UUID, sender: str, sent: datetime, level: int,
              level_name: str, rule_id: str, m: Methane, previous: tuple[Ref, ...] = ()) -> str:
    """`Alert` for the first escalation of an incident, `Update` referencing earlier ones after."""
    alert = _header(event_id, sender, sent, s, "Update" if previous else "Alert", previous, None)
    _info(alert, s, level, level_name, rule_id, m)
    return _xml(alert)


def cancel_xml(s: IncidentState, *, event_id: uuid.UUID, sender: str, sent: datetime,
               raised: tuple[Ref, ...]) -> str:
    """`Cancel` of every alert raised for the incident (a stand-down)."""
    note = f"Stood down: incident {s.status.value.replace('_', ' ')}"
    return _xml(_header(event_id, sender, sent, s, "Cancel", raised, note))
