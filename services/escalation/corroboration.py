"""Correlation and corroboration of reports (pure): one emergency, one lead, one alert chain.

Reports of a category a correlation rule covers, with coordinates, are re-keyed by (mode,
exercise, rule) so that one worker sees every report that could be of the same emergency,
whichever partition its incident lives on. Each such report waits for a verdict before it
may escalate:

- **lead**: nothing of its kind is near it; it escalates on its own.
- **linked**: it is within the rule's radius (metres) and window (minutes between the
  reports' occurred_at) of a lead, or of a report already linked to one: it is a duplicate
  of that lead and never escalates on its own. The lead is told (**correlated**) and lists
  it as related, with the rule, the distance from the lead and the interval as provenance.

A lead that is over (resolved, closed, unfounded, a false alarm) leads nothing more: the
incident agent tells its window (`closing`; a report already over when it is nominated comes
with `closed` set), and a report near it afterwards is a new emergency that escalates on its
own. (Linked to the finished lead, as before, it stayed silent for good: its deadlines never
climbed and the lead, being over, published nothing naming it. Found by the soak of
2026-12-03: a fight reported twelve minutes after one nearby was closed.)

The lead is the first report of the emergency to arrive and never changes, so an alert
chain never moves to another incident. Within a lead's group, when reports from at least
`min_reports` distinct sources of a corroboration rule's categories lie within its radius
and window of the lead, the lead is told it is **corroborated** (it may then escalate to
the rule's level, naming the others).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from services.escalation.config import CorroborationRule, CorrelationRule, RuleSet
from services.shared.events import Related

EARTH_RADIUS_M = 6_371_000.0


def source_of(report) -> str:
    """Who a report is from, for corroboration's independent sources: its source's id, which intake
    sets to the reporting token's subject (its kind follows the token's role, so counting kind:id
    made one person's reports under two roles two sources)."""
    return report.source.id


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    incident_id: uuid.UUID
    partition: int
    category: str
    mode: str
    source: str  # source_of(report): the independence criterion of corroboration
    lat: float
    lon: float
    at: datetime  # occurred_at
    recorded_at: datetime | None = None  # when Muster learnt of it: the time of the notices it causes
    exercise: str | None = None
    lead: uuid.UUID | None = None  # set on a report linked to a lead
    rule_id: str | None = None
    distance_m: float | None = None  # from the lead
    interval_s: float | None = None  # after the lead
    corroborated_by: tuple[str, ...] = ()  # on a lead: corroboration rules already notified
    closed: bool = False  # the incident is over: it leads nothing more
    closing: bool = False  # not a report: the notice that this incident is over (`closing`)


class Window(BaseModel):
    """Recent candidates of one (mode, exercise, correlation rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    candidates: tuple[Candidate, ...] = ()


class Notice(BaseModel):
    """To an incident: a verdict on its report, reports joining it as lead, or a deadline tick."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str  # lead | linked | correlated | corroborated | deadline | release | unlinked
    incident_id: uuid.UUID
    partition: int | None = None  # None: the partition of the incident's key
    rule_id: str | None = None
    lead: uuid.UUID | None = None
    members: tuple[uuid.UUID, ...] = ()
    related: tuple[Related, ...] = ()
    at: datetime | None = None


def wanted(fact, rules: RuleSet) -> bool:
    """A report a correlation rule covers, with coordinates: it waits for a verdict."""
    loc = fact.location
    return rules.correlation_for(fact.category) is not None and loc.lat is not None and loc.lon is not None


def closing(incident_id: uuid.UUID, partition: int, category: str, mode: str, at: datetime,
            exercise: str | None = None) -> Candidate:
    """To the window of an incident's kind: the incident is over and leads nothing more. It carries no
    location or source (a finished incident keeps neither): only its id matters to `observe`."""
    return Candidate(incident_id=incident_id, partition=partition, category=category, mode=mode, source="",
                     lat=0.0, lon=0.0, at=at, exercise=exercise, closed=True, closing=True)


def group_key(mode: str, category: str, rules: RuleSet, exercise: str | None = None) -> str:
    """Reports that may be of one emergency: same mode (and exercise), same correlation rule."""
    rule = rules.correlation_for(category)
    return f"{mode}:{exercise or ''}:{rule.id if rule else category}"


def distance_m(a: Candidate, b: Candidate) -> float:
    """Haversine distance in metres."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def _near(rule: CorrelationRule | CorroborationRule, a: Candidate, b: Candidate) -> bool:
    return abs(a.at - b.at) <= timedelta(minutes=rule.window_minutes) and distance_m(a, b) <= rule.radius_m


def relation(lead: Candidate, c: Candidate, rule_id: str) -> Related:
    return Related(incident_id=c.incident_id, rule_id=rule_id, distance_m=round(distance_m(lead, c), 1),
                   interval_s=round((c.at - lead.at).total_seconds(), 1))


def _verdict(c: Candidate) -> Notice:
    if c.lead is None:
        return Notice(kind="lead", incident_id=c.incident_id, partition=c.partition, at=c.recorded_at)
    rel = Related(incident_id=c.incident_id, rule_id=c.rule_id or "correlation", distance_m=c.distance_m,
                  interval_s=c.interval_s)
    return Notice(kind="linked", incident_id=c.incident_id, partition=c.partition, lead=c.lead, rule_id=c.rule_id,
                  related=(rel,), at=c.recorded_at)


# A window is one table record (the changelog's), read and written whole for every candidate:
# it must stay well under the broker's 1 MB message limit and cheap to parse. A candidate is
# about 400 bytes of JSON. Past this many (a burst far beyond any borough's: the soak's
# 70 events/s filled a six-hour window of one rule to 1 MB and stopped the worker), the
# oldest leave first: a report that would have linked to one escalates as a lead of its own,
# a duplicate alert rather than a missed one.
MAX_CANDIDATES = 1000


def horizon(rule: CorrelationRule, rules: RuleSet) -> int:
    """Minutes a candidate of this rule's window can still matter: the rule's own window, or a
    corroboration rule's over the same categories, whichever is longer."""
    return max([rule.window_minutes, *(r.window_minutes for r in rules.corroboration
                                       if set(r.categories) & set(rule.categories))])


def observe(window: Window, c: Candidate, rules: RuleSet) -> tuple[Window, list[Notice]]:
    """Add a candidate; return the new window and the notices to send."""
    seen = next((x for x in window.candidates if x.incident_id == c.incident_id), None)
    if c.closing:
        if seen is None or seen.closed:
            return window, []  # not (or no longer) in the window: nothing can link to it
        done = seen.model_copy(update={"closed": True})
        return Window(candidates=tuple(done if x is seen else x for x in window.candidates)), []
    if seen is not None:
        return window, [_verdict(seen)]  # a replayed candidate: the same verdict again
    rule = rules.correlation_for(c.category)
    if rule is None:
        return window, [_verdict(c)]
    newest = max([c.at, *(x.at for x in window.candidates)])
    limit = timedelta(minutes=2 * horizon(rule, rules))
    leading = {x.lead for x in window.candidates if x.lead is not None and newest - x.at <= limit}
    kept = tuple(x for x in window.candidates if newest - x.at <= limit or x.incident_id in leading)  # chains go on
    if len(kept) >= MAX_CANDIDATES:  # a burst past any borough's: the newest only (see MAX_CANDIDATES)
        kept = tuple(sorted(kept, key=lambda x: (x.at, str(x.incident_id)))[len(kept) - MAX_CANDIDATES + 1:])
    by_id = {x.incident_id: x for x in kept}
    leads = [by_id.get(x.lead, x) if x.lead else x for x in kept if x.category in rule.categories and _near(rule, x, c)]
    leads = [x for x in leads if x.lead is None and not x.closed]
    if not leads:
        return Window(candidates=(*kept, c)), [_verdict(c)]
    lead = min(leads, key=lambda x: (x.at, str(x.incident_id)))
    rel = relation(lead, c, rule.id)
    member = c.model_copy(update={"lead": lead.incident_id, "rule_id": rule.id, "distance_m": rel.distance_m,
                                  "interval_s": rel.interval_s})
    notices = [_verdict(member),
               Notice(kind="correlated", incident_id=lead.incident_id, partition=lead.partition, related=(rel,),
                      at=c.recorded_at)]
    group = [lead, *(x for x in kept if x.lead == lead.incident_id), member]
    for corroboration in rules.corroboration_for(lead.category):  # type: ignore[arg-type]
        if corroboration.id in lead.corroborated_by:
            continue
        sources = {x.source: x for x in group if x.category in corroboration.categories
                   and (x is lead or _near(corroboration, lead, x))}
        if len(sources) >= corroboration.min_reports:
            lead = lead.model_copy(update={"corroborated_by": (*lead.corroborated_by, corroboration.id)})
            members = tuple(x.incident_id for x in sources.values() if x.incident_id != lead.incident_id)
            notices.append(Notice(kind="corroborated", incident_id=lead.incident_id, partition=lead.partition,
                                  rule_id=corroboration.id, members=members, at=c.recorded_at))
    updated = tuple(lead if x.incident_id == lead.incident_id else x for x in kept)
    return Window(candidates=(*updated, member)), notices
