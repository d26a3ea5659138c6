"""Corroboration (pure): N independent reports of one kind within R metres and T minutes.

Candidates are re-keyed by (mode, category) so that one worker sees every candidate that
could belong to a group, whichever partition its incident lives on. A group forms when a
report arrives with at least `min_reports - 1` others from distinct sources within R
metres and T minutes of it; its lead is the earliest report. The lead escalates once for
the whole group; the others are linked to it and never escalate on their own. A later
report close to a group joins it.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from services.escalation.config import CorroborationRule, RuleSet
from services.shared.events import IncidentReported

EARTH_RADIUS_M = 6_371_000.0


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    incident_id: uuid.UUID
    partition: int
    category: str
    mode: str
    source: str  # kind:id, the independence criterion
    lat: float
    lon: float
    at: datetime
    lead: uuid.UUID | None = None
    rule_id: str | None = None


class Window(BaseModel):
    """Recent candidates of one (mode, category)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    candidates: tuple[Candidate, ...] = ()


class Notice(BaseModel):
    """To an incident: you lead a group (`members`) or you are linked to `lead`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str
    incident_id: uuid.UUID
    partition: int
    rule_id: str | None = None
    lead: uuid.UUID | None = None
    members: tuple[uuid.UUID, ...] = ()


def wanted(fact: IncidentReported, rules: RuleSet) -> bool:  # or its narrow view (facts.py)
    """A report a corroboration rule covers, with coordinates: a candidate for a group."""
    loc = fact.location
    return bool(rules.corroboration_for(fact.category)) and loc.lat is not None and loc.lon is not None


def group_key(mode: str, category: str) -> str:
    return f"{'live' if mode == 'live' else 'exercise'}:{category}"


def distance_m(a: Candidate, b: Candidate) -> float:
    """Haversine distance in metres."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def _near(rule: CorroborationRule, a: Candidate, b: Candidate) -> bool:
    return abs(a.at - b.at) <= timedelta(minutes=rule.window_minutes) and distance_m(a, b) <= rule.radius_m


def observe(window: Window, c: Candidate, rules: RuleSet) -> tuple[Window, list[Notice]]:
    """Add a candidate; return the new window and the notices to send."""
    if any(x.incident_id == c.incident_id for x in window.candidates):
        return window, []  # a replayed candidate
    horizon = max((r.window_minutes for r in rules.corroboration), default=0)
    newest = max([c.at, *(x.at for x in window.candidates)])
    kept = tuple(x for x in window.candidates if newest - x.at <= timedelta(minutes=2 * horizon))
    for rule in rules.corroboration_for(c.category):  # type: ignore[arg-type]
        joined = next((x for x in kept if x.lead and x.rule_id == rule.id and _near(rule, x, c)), None)
        if joined is not None:
            lead = next((x for x in kept if x.incident_id == joined.lead), joined)
            member = c.model_copy(update={"lead": joined.lead, "rule_id": rule.id})
            return Window(candidates=(*kept, member)), [
                Notice(kind="linked", incident_id=c.incident_id, partition=c.partition, lead=joined.lead),
                Notice(kind="corroborated", incident_id=lead.incident_id, partition=lead.partition,
                       rule_id=rule.id, members=(c.incident_id,)),
            ]
        group = _group(rule, kept, c)
        if group:
            lead = group[0]
            members = tuple(x.incident_id for x in group[1:])
            ids = {x.incident_id for x in group}
            updated = tuple(x.model_copy(update={"lead": lead.incident_id, "rule_id": rule.id})
                            if x.incident_id in ids else x for x in (*kept, c))
            notices = [Notice(kind="corroborated", incident_id=lead.incident_id, partition=lead.partition,
                              rule_id=rule.id, members=members)]
            notices += [Notice(kind="linked", incident_id=x.incident_id, partition=x.partition, lead=lead.incident_id)
                        for x in group[1:]]
            return Window(candidates=updated), notices
    return Window(candidates=(*kept, c)), []


def _group(rule: CorroborationRule, kept: tuple[Candidate, ...], c: Candidate) -> list[Candidate]:
    """The ungrouped reports near `c` with one per source, earliest first, if enough."""
    by_source: dict[str, Candidate] = {c.source: c}
    for x in sorted(kept, key=lambda x: (x.at, str(x.incident_id))):
        if x.lead is None and x.category == c.category and _near(rule, x, c) and x.source not in by_source:
            by_source[x.source] = x
    group = sorted(by_source.values(), key=lambda x: (x.at, str(x.incident_id)))
    return group if len(group) >= rule.min_reports else []
