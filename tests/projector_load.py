"""A deterministic stream of incident facts for the projector's load tests and benchmark.

Each incident gets a report and a handful of facts, in log order per incident, with the
awkward cases mixed in: a late fact (occurred before one already sent), a repeated
event_id, facts whose report comes after them, updates, links to a lead incident.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from services.shared import events as ev
from tests.factories import BOW_EAST, POPLAR, T0, WHITECHAPEL, fact, reported

WARDS = (POPLAR, WHITECHAPEL, BOW_EAST)
CATEGORIES = ("antisocial_behaviour", "fire", "violence", "noise", "domestic_abuse", "flood")


def incident_facts(rng: random.Random, lead: uuid.UUID | None) -> list[ev.IncidentEvent]:
    at = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
    report = reported(
        incident_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        occurred_at=at, recorded_at=at + timedelta(seconds=5),
        category=rng.choice(CATEGORIES), severity=rng.randint(1, 5),
        location=ev.Location(ward_code=rng.choice(WARDS)),
    )
    i = report.incident_id

    def f(cls, minutes, **fields):
        return fact(cls, i, at + timedelta(minutes=minutes), event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                    **fields)

    facts: list[ev.IncidentEvent] = [
        f(ev.IncidentAcknowledged, 2, acknowledged_by="op-1"),
        f(ev.ResponderDispatched, 5, agency=rng.choice(("police", "fire", "ambulance")), callsign="U-1"),
        f(ev.ResponderArrived, 15, agency="police", callsign="U-1"),
        f(ev.IncidentUpdated, 16, severity=rng.randint(1, 5)),
        f(ev.NoteAdded, 17, text="Update from scene"),
        f(ev.IncidentStatusChanged, 60, status=rng.choice(("resolved", "contained", "false_alarm"))),
    ]
    rng.shuffle(facts)  # late facts: log order differs from occurred_at order
    facts = facts[: rng.randint(2, len(facts))]
    if lead is not None and rng.random() < 0.1:
        facts.append(f(ev.IncidentLinked, 20, lead_incident_id=lead))
    if rng.random() < 0.1:
        facts.append(rng.choice(facts))  # the same event_id again
    if rng.random() < 0.05:
        return [*facts, report]  # the report arrives after its facts
    return [report, *facts]


def stream(n_events: int, seed: int = 7) -> list[ev.IncidentEvent]:
    """About n_events facts, incidents interleaved, each incident's facts in its own order."""
    rng = random.Random(seed)
    pending: list[list[ev.IncidentEvent]] = []
    out: list[ev.IncidentEvent] = []
    lead: uuid.UUID | None = None
    made = 0
    while made < n_events:
        facts = incident_facts(rng, lead)
        lead = facts[0].incident_id
        made += len(facts)
        pending.append(facts)
        if len(pending) >= 50:
            while pending:
                k = rng.randrange(len(pending))
                out.append(pending[k].pop(0))
                if not pending[k]:
                    pending.pop(k)
    for facts in pending:
        out += facts
    return out
