"""Which incident facts a reader of the incidents topic takes: the one definition.

Intake refuses a second `IncidentReported` for an incident and a fact whose `mode` differs
from its incident's (services/intake/registry.py), but a fact can reach the topic some other
way (a partner producer, a replayed backup, a bug). Every processor that folds incident
facts (the projector, the escalation processor, the re-keying stages of tension and
casework, these through services/shared/first_reports.py) asks `refusal` before it applies one, and ignores what it refuses: counted in its metrics and sent to the
dead-letter topic with the reason returned here. Pure, no I/O.

What an incident's first report fixed is `Reported(mode)`; `None` means no report has been
applied yet (a fact arriving before its report is taken, as before).
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import REGISTRY, CollectorRegistry, Counter

REPEATED_REPORT = "repeated_report"
MODE_MISMATCH = "mode_mismatch"
REASONS = (REPEATED_REPORT, MODE_MISMATCH)


class Reported(NamedTuple):
    """What the incident's first applied report fixed."""

    mode: str


class Refusal(NamedTuple):
    reason: str  # one of REASONS: a bounded metric label
    detail: str  # the dead letter's error text (ids and modes only, never content)

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def refusal(first: Reported | None, event_type: str, mode: str, incident_id: object) -> Refusal | None:
    """None when the fact may be applied; else why it is ignored.

    `first`: what the incident's first report fixed (None: not reported yet). `mode` is the
    fact's mode as text ("live", "exercise", "test"); an enum member compares equal."""
    if first is None:
        return None
    if event_type == "IncidentReported":
        return Refusal(REPEATED_REPORT, f"incident {incident_id} was already reported; the first report is the only report")
    if mode != first.mode:
        return Refusal(MODE_MISMATCH, f"mode {mode!s} differs from incident {incident_id}'s mode {first.mode!s}")
    return None


class Refused(ValueError):
    """Raised by a processor's fold when `refusal` says no: the fact goes to the dead-letter topic."""

    def __init__(self, refused: Refusal) -> None:
        super().__init__(str(refused))
        self.refusal = refused


def ignored_counter(service: str, registry: CollectorRegistry = REGISTRY) -> Counter:
    """muster_<service>_facts_ignored_total{reason}: facts `refusal` kept out (each also dead-lettered)."""
    return Counter(
        f"muster_{service}_facts_ignored_total",
        "Incident facts ignored and dead-lettered: a repeated IncidentReported, or a mode other than the incident's.",
        ["reason"],
        registry=registry,
    )
