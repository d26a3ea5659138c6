"""From a decision to the messages it produces, and to whom (pure).

`emit(state, decision)` returns the events of the incident's one alert chain and the
state that records them:

- `EscalationRaised` per level raised (CAP Alert first, then Update);
- `EscalationUpdated` when M/ETHANE changed materially since the last message (casualties,
  hazards, location, declaration, access, agencies, type, related reports): a CAP Update;
- `EscalationStoodDown` at the end: CAP Update with responseType AllClear when resolved or
  closed; CAP Cancel when unfounded, a false alarm, or a duplicate of another incident.

Every CAP message references every earlier message of the chain; `<sent>` is the
triggering fact's `recorded_at` (a deadline climb: the deadline), never earlier than the
message before it, so a replay renders the same bytes.

`deliveries(state, event)` says what each recipient gets: the full text (address,
what3words, coordinates, access) to the incident's owners and responding agencies, cleared
for its classification; the ward only to every other recipient. People never.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from services.escalation import cap
from services.escalation.methane import methane
from services.escalation.rules import Decision, stood_down_event_id
from services.escalation.state import IncidentState, Sent
from services.shared.events import (
    Agency, Classification, Detail, EscalationRaised, EscalationStoodDown, EscalationUpdated, IncidentStatus, Methane,
    Source, SourceKind, derived_event_id,
)

SOURCE = Source(kind=SourceKind.SYSTEM, id="escalation")
CANCELLED = frozenset({IncidentStatus.UNFOUNDED, IncidentStatus.FALSE_ALARM})
Out = EscalationRaised | EscalationUpdated | EscalationStoodDown


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to one recipient: an agency's topic, or None for the all-agencies topic."""

    agency: Agency | None
    event: Out


def updated_event_id(incident_id: uuid.UUID, sequence: int) -> uuid.UUID:
    return derived_event_id(incident_id, "updated", sequence)


def digest(m: Methane, related: tuple) -> str:
    """What a material change is measured on: the whole M/ETHANE and the related reports."""
    text = m.model_dump_json() + "|" + ",".join(str(r) for r in related)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _material(before: Methane | None, after: Methane) -> tuple[str, ...]:
    if before is None:
        return ()
    names = {"major_incident_statement": "M", "exact_location": "E-location", "type": "T", "hazards": "H",
             "access": "A", "number_of_casualties": "N", "emergency_services_present": "E-present",
             "emergency_services_required": "E-required"}
    return tuple(label for f, label in names.items() if getattr(before, f) != getattr(after, f))


def _reached(s: IncidentState) -> tuple[Agency, ...]:
    agencies = {a for r in s.raised.values() for a in r.agencies}
    return tuple(a for a in Agency if a in agencies)


@dataclass
class Emitter:
    sender: str
    contact: str

    def emit(self, s: IncidentState, d: Decision, now: datetime,
             before: IncidentState | None = None) -> tuple[list[Delivery], IncidentState]:
        """The decision's messages to their recipients, and the state once they are sent."""
        from services.escalation.rules import apply

        after = apply(s, d)
        if not s.raised and not d.raises:
            return [], after  # nothing escalated: nothing to say (the common case, kept cheap)
        out: list[Delivery] = []
        chain, last_digest, reached = s.chain, s.methane_digest, _reached(s)
        for r in d.raises:
            if r.level in s.raised:
                continue
            event_id = r.event_id(s.incident_id)
            level_name = d.rules.levels[r.level].name
            reached = _union(reached, r.agencies)
            m = methane(s, r.level, reached, r.rule_id)
            sent = _sent(chain, r.trigger or s.recorded_at or r.at)
            msg = cap.Message(event_id, sent, "Update" if chain else "Alert", "Execute" if r.level >= 2 else "Assess",
                              r.level, level_name, r.rule_id, m, _refs(chain), agencies=r.agencies)
            event = EscalationRaised(
                event_id=event_id, incident_id=s.incident_id, occurred_at=r.at, recorded_at=now, source=SOURCE,
                classification=s.classification, mode=s.mode, level=r.level, level_name=level_name,
                agencies=r.agencies, rule_id=r.rule_id, rule_set_version=d.rules.version, reason=r.reason,
                category=s.category, severity=s.severity, ward_code=s.location.ward_code,
                related_incident_ids=s.related_ids, related=s.related, methane=m, exercise=s.exercise,
                cap_xml=cap.render(s, msg, sender=self.sender, contact=self.contact),
            )
            out += self._deliver(s, event, msg)
            chain = (*chain, Sent(event_id=event_id, sent=sent))
            last_digest = digest(m, s.related_ids)
        if d.stand_down:
            out += self._stood_down(s, d, chain, now)
        elif not d.raises and s.raised and not s.stood_down and s.linked_to is None and not s.status.terminal:
            m = methane(s, s.max_level, reached, s.raised[s.max_level].rule_id)
            if digest(m, s.related_ids) != s.methane_digest:
                event, msg = self._updated(s, d, m, chain, now, before)
                out += self._deliver(s, event, msg)
                chain = (*chain, Sent(event_id=event.event_id, sent=msg.sent))
                last_digest = digest(m, s.related_ids)
        if chain != after.chain or last_digest != after.methane_digest:
            after = after.model_copy(update={"chain": chain, "methane_digest": last_digest})
        return out, after

    def _updated(self, s: IncidentState, d: Decision, m: Methane, chain: tuple[Sent, ...], now: datetime,
                 before: IncidentState | None) -> tuple[EscalationUpdated, cap.Message]:
        level = s.max_level
        top = s.raised[level]
        previous = methane(before, level, _reached(before), top.rule_id) if before is not None else None
        changed = _material(previous, m)
        if before is not None and set(s.related_ids) != set(before.related_ids):
            changed += ("related reports",)
        changed = changed or ("M/ETHANE",)
        sequence = len(chain) - len(s.raised) + 1
        event_id = updated_event_id(s.incident_id, sequence)
        sent = _sent(chain, s.recorded_at or now)
        level_name = d.rules.levels[level].name
        reached = _reached(s)
        msg = cap.Message(event_id, sent, "Update", "Execute" if level >= 2 else "Assess", level, level_name,
                          top.rule_id, m, _refs(chain), note=f"Update {sequence}: {', '.join(changed)} changed",
                          agencies=reached)
        event = EscalationUpdated(
            event_id=event_id, incident_id=s.incident_id, occurred_at=s.last_fact_at or now, recorded_at=now,
            source=SOURCE, classification=s.classification, mode=s.mode, sequence=sequence, level=level,
            level_name=level_name, agencies=reached, changed=changed, rule_set_version=d.rules.version,
            category=s.category, severity=s.severity, ward_code=s.location.ward_code if s.location else None,
            related_incident_ids=s.related_ids, related=s.related, methane=m, exercise=s.exercise,
            cap_xml=cap.render(s, msg, sender=self.sender, contact=self.contact),
        )
        return event, msg

    def _stood_down(self, s: IncidentState, d: Decision, chain: tuple[Sent, ...], now: datetime) -> list[Delivery]:
        event_id = stood_down_event_id(s.incident_id)
        sent = _sent(chain, s.recorded_at or now)
        level = s.max_level
        status = s.status.value.replace("_", " ")
        if s.linked_to is not None:
            reason, msg_type, response = f"duplicate of incident {s.linked_to}", "Cancel", None
            note = f"Cancelled: a duplicate report of incident {s.linked_to}, whose alert chain continues"
        elif s.status in CANCELLED:
            reason, msg_type, response = f"incident {status}", "Cancel", None
            note = f"Cancelled: the incident was found to be {status}"
        else:
            reason, msg_type, response = f"incident {status}", "Update", "AllClear"
            note = f"All clear: the incident is {status}"
        reached = _reached(s)
        m = methane(s, level, reached, s.raised[level].rule_id) if response else None
        msg = cap.Message(event_id, sent, msg_type, response, level, d.rules.levels[level].name,
                          s.raised[level].rule_id, m, _refs(chain), note=note, agencies=reached)
        event = EscalationStoodDown(
            event_id=event_id, incident_id=s.incident_id, occurred_at=s.last_fact_at or now, recorded_at=now,
            source=SOURCE, classification=s.classification, mode=s.mode, levels=tuple(sorted(s.raised)),
            agencies=reached, reason=reason[:200], final_status=s.status, rule_set_version=d.rules.version,
            duplicate_of=s.linked_to, exercise=s.exercise,
            cap_xml=cap.render(s, msg, sender=self.sender, contact=self.contact),
        )
        return self._deliver(s, event, msg)

    # --- who gets what ------------------------------------------------------------------

    def _deliver(self, s: IncidentState, event: Out, msg: cap.Message) -> list[Delivery]:
        """The event for each of its recipients, each with the detail it may have (one rendering per detail)."""
        ward: Out | None = None
        out = []
        for agency in (None, *event.agencies):
            if detail_for(s, agency) is Detail.FULL:
                out.append(Delivery(agency, event))
                continue
            if ward is None:
                ward = self._ward_only(s, event, msg)
            out.append(Delivery(agency, ward))
        return out

    def _ward_only(self, s: IncidentState, event: Out, msg: cap.Message) -> Out:
        m = None if msg.methane is None else methane(
            s, msg.level, msg.methane.emergency_services_required, msg.rule_id, Detail.WARD)
        xml = cap.render(s, replace(msg, methane=m), sender=self.sender, contact=self.contact, detail=Detail.WARD)
        if isinstance(event, EscalationStoodDown):
            return event.model_copy(update={"cap_xml": xml})
        return event.model_copy(update={"methane": m, "detail": Detail.WARD, "cap_xml": xml})


def _union(a: tuple[Agency, ...], b: tuple[Agency, ...]) -> tuple[Agency, ...]:
    present = {*a, *b}
    return tuple(x for x in Agency if x in present)


def _refs(chain: tuple[Sent, ...]) -> tuple[cap.Ref, ...]:
    return tuple(cap.Ref(cap.identifier(m.event_id), m.sent) for m in chain)


def _sent(chain: tuple[Sent, ...], at: datetime) -> datetime:
    """When Muster decided, never before the message it follows."""
    return max(at, chain[-1].sent) if chain else at


def owners(s: IncidentState) -> frozenset[Agency]:
    """The agencies that own the incident: its reporter's agency and every agency required
    (the same rule as the query service's for OFFICIAL-SENSITIVE records)."""
    return frozenset({*((s.source_agency,) if s.source_agency else ()), *s.agencies_required})


def responding(s: IncidentState) -> frozenset[Agency]:
    """Owners, and every agency dispatched to or present at the incident."""
    return owners(s) | set(s.agencies_dispatched) | set(s.agencies_present)


def detail_for(s: IncidentState, agency: Agency | None) -> Detail:
    """Full text to owners and responding agencies cleared for it; the ward to everyone else.

    OFFICIAL-SENSITIVE: only the owners (never an agency merely called in by a level).
    The all-agencies topic (the control room's and the status store's) has the detail of an
    OFFICIAL incident, the ward only of a sensitive one."""
    if s.classification is Classification.OFFICIAL_SENSITIVE:
        return Detail.FULL if agency is not None and agency in owners(s) else Detail.WARD
    if agency is None:
        return Detail.FULL
    return Detail.FULL if agency in responding(s) else Detail.WARD
