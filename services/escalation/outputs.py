"""From a decision to the events it produces (pure): EscalationRaised per level, EscalationStoodDown.

`state` is the incident's state before the decision was applied, so `previous` alerts are
those raised before this decision.
"""

from __future__ import annotations

from datetime import datetime

from services.escalation import cap
from services.escalation.methane import methane
from services.escalation.rules import Decision, stood_down_event_id
from services.escalation.state import IncidentState
from services.shared.events import Agency, EscalationRaised, EscalationStoodDown, Source, SourceKind

SOURCE = Source(kind=SourceKind.SYSTEM, id="escalation")


def raised_events(s: IncidentState, d: Decision, *, sender: str, now: datetime) -> list[EscalationRaised]:
    out: list[EscalationRaised] = []
    previous = tuple(cap.Ref(cap.identifier(r.event_id), r.at) for _, r in sorted(s.raised.items()))
    for r in d.raises:
        if r.level in s.raised:
            continue
        event_id = r.event_id(s.incident_id)
        level_name = d.rules.levels[r.level].name
        m = methane(s, r.level, r.agencies)
        xml = cap.alert_xml(s, event_id=event_id, sender=sender, sent=r.at, level=r.level, level_name=level_name,
                            rule_id=r.rule_id, m=m, previous=previous)
        out.append(EscalationRaised(
            event_id=event_id, incident_id=s.incident_id, occurred_at=r.at, recorded_at=now, source=SOURCE,
            classification=s.classification, mode=s.mode, level=r.level, level_name=level_name,
            agencies=r.agencies, rule_id=r.rule_id, rule_set_version=d.rules.version, reason=r.reason,
            category=s.category, severity=s.severity, ward_code=s.location.ward_code,
            related_incident_ids=r.related, methane=m, cap_xml=xml,
        ))
        previous += (cap.Ref(cap.identifier(event_id), r.at),)
    return out


def stood_down_event(s: IncidentState, d: Decision, *, sender: str, now: datetime) -> EscalationStoodDown:
    event_id = stood_down_event_id(s.incident_id)
    at = s.last_fact_at or now
    refs = tuple(cap.Ref(cap.identifier(r.event_id), r.at) for _, r in sorted(s.raised.items()))
    agencies = {a for r in s.raised.values() for a in r.agencies}
    return EscalationStoodDown(
        event_id=event_id, incident_id=s.incident_id, occurred_at=at, recorded_at=now, source=SOURCE,
        classification=s.classification, mode=s.mode, levels=tuple(sorted(s.raised)),
        agencies=tuple(a for a in Agency if a in agencies), reason=f"incident {s.status.value.replace('_', ' ')}",
        final_status=s.status, rule_set_version=d.rules.version,
        cap_xml=cap.cancel_xml(s, event_id=event_id, sender=sender, sent=at, raised=refs),
    )


def outputs(s: IncidentState, d: Decision, *, sender: str, now: datetime) -> list[EscalationRaised | EscalationStoodDown]:
    events: list[EscalationRaised | EscalationStoodDown] = list(raised_events(s, d, sender=sender, now=now))
    if d.stand_down:
        events.append(stood_down_event(s, d, sender=sender, now=now))
    return events
