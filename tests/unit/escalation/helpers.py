"""Small builders for the escalation unit tests."""

from __future__ import annotations

from datetime import timedelta

from services.escalation.config import load_rules, parse_rules
from services.escalation.state import IncidentState, fold
from services.shared import events as ev
from services.shared.settings import REPO_ROOT
from services.shared.wards import wards
from tests.factories import T0, fact, reported

# tests.factories.POPLAR is St Peter's in the packaged ward list: look Poplar up by name.
POPLAR = next(code for code, ward in wards().items() if ward.name == "Poplar")
DEFAULT_RULES = load_rules(REPO_ROOT / "services" / "escalation" / "rules.yaml")
LEVELS = {
    1: {"name": "duty officer", "agencies": ["council"]},
    2: {"name": "partnership tactical", "agencies": ["council", "police"]},
    3: {"name": "major incident", "agencies": ["council", "fire", "police", "ambulance"]},
}


def ruleset(**overrides):
    raw = {"version": "t1", "levels": LEVELS, "rules": [], "corroboration": [],
           "acknowledgement": {"deadline_seconds": {4: 60}, "climb_limit": 3}}
    raw.update(overrides)
    return parse_rules(raw)


def state(*facts: ev.IncidentEvent) -> IncidentState:
    s = None
    for f in facts:
        s = fold(s, f, partition=0)
    return s


def poplar_fire(**overrides) -> ev.IncidentReported:
    fields = dict(
        category="fire", severity=5, source=ev.Source(kind="fire", id="lfb-poplar"),
        location=ev.Location(ward_code=POPLAR, lat=51.508, lon=-0.017, address="Chrisp Street Market"),
        casualties=ev.Casualties(serious=2, minor=4), hazards=("fire", "smoke"),
        agencies_required=("fire", "ambulance"), description="Fire in a block of flats",
    )
    fields.update(overrides)
    return reported(**fields)


__all__ = ["DEFAULT_RULES", "POPLAR", "T0", "fact", "reported", "ruleset", "state", "poplar_fire", "timedelta"]


SENDER = "escalation@muster.test"
CONTACT = "Control room test line"


def escalate(s: IncidentState, rs=DEFAULT_RULES, now=T0, before: IncidentState | None = None):
    """(events as the all-agencies topic gets them, every delivery, the state after)."""
    from services.escalation import rules
    from services.escalation.outputs import Emitter

    d = rules.decide(s, rs, now)
    deliveries, after = Emitter(SENDER, CONTACT).emit(s, d, now, before)
    return [x.event for x in deliveries if x.agency is None], deliveries, after


def lead(s: IncidentState) -> IncidentState:
    """A report correlation covers, told it leads (nothing of its kind near it)."""
    return s.model_copy(update={"awaiting_correlation": False})


__all__ += ["SENDER", "CONTACT", "escalate", "lead"]
