"""The exercise debrief, from the event log: how long each step took after the first report.

`muster exercise debrief <exercise>` reads the incidents topic and the exercise escalation
topic from the beginning, keeps the incidents whose report names the exercise, and lists,
per agency, the time from the exercise's first report to each acknowledgement, declaration,
level raised, M/ETHANE update, dispatch, arrival and stand-down: as a table and as a
timeline picture (PNG). Exercising is a duty under the Civil Contingencies Act 2004; this is
what the debrief meeting reads.

`milestones` and `table` are pure; `timeline_png` draws with matplotlib (no display needed).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.shared import events as ev

ALL = "all"  # a milestone of the incident, not of one agency (report, acknowledgement)
KINDS = ("report", "acknowledged", "declared", "level", "M/ETHANE", "dispatched", "arrived", "stood down")


class DebriefError(ValueError):
    """Nothing to debrief: no report names the exercise."""


@dataclass(frozen=True, slots=True)
class Milestone:
    at: datetime
    since_s: float  # seconds after the exercise's first report
    agency: str  # an agency, or ALL
    kind: str  # one of KINDS
    what: str  # e.g. "level 3 major incident", "declared by gm-1"
    incident_id: uuid.UUID


def milestones(events: Iterable[ev.Event], exercise: str) -> list[Milestone]:
    """Every milestone of the exercise's incidents, in time order (recorded_at: when Muster knew)."""
    events = list(events)
    reports = {e.incident_id: e for e in events if isinstance(e, ev.IncidentReported) and e.exercise == exercise}
    if not reports:
        raise DebriefError(f"exercise: no report names exercise {exercise!r} on the incidents topic")
    start = min(r.recorded_at for r in reports.values())
    seen: set[uuid.UUID] = set()
    out: list[tuple[datetime, str, str, str, uuid.UUID]] = []
    for e in events:
        incident = getattr(e, "incident_id", None)
        if incident not in reports or e.mode is not ev.Mode.EXERCISE or e.event_id in seen:
            continue
        seen.add(e.event_id)  # a record read twice (a replay, an older schema edition) is one milestone
        out += [(e.recorded_at, agency, kind, what, incident) for agency, kind, what in _steps(e)]
    out.sort(key=lambda m: (m[0], m[1], m[2]))
    return [Milestone(at, (at - start).total_seconds(), agency, kind, what, incident)
            for at, agency, kind, what, incident in out]


def _steps(e: ev.Event) -> list[tuple[str, str, str]]:
    match e:
        case ev.IncidentReported():
            return [(ALL, "report", f"{e.category.value.replace('_', ' ')} reported, severity {e.severity}")]
        case ev.IncidentAcknowledged():
            return [(ALL, "acknowledged", "acknowledged by the control room")]
        case ev.MajorIncidentDeclared():
            return [(e.agency.value, "declared", f"major incident declared by {e.declared_by}")]
        case ev.EscalationRaised():
            return [(a.value, "level", f"level {e.level} {e.level_name}") for a in e.agencies]
        case ev.EscalationUpdated():
            return [(a.value, "M/ETHANE", f"M/ETHANE update {e.sequence}: {', '.join(e.changed)}") for a in e.agencies]
        case ev.ResponderDispatched():
            return [(e.agency.value, "dispatched", f"dispatched {e.callsign}")]
        case ev.ResponderArrived():
            return [(e.agency.value, "arrived", f"arrived {e.callsign}")]
        case ev.EscalationStoodDown():
            return [(a.value, "stood down", e.reason) for a in e.agencies]
    return []


def _clock(seconds: float) -> str:
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    return f"{sign}{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def table(rows: list[Milestone], exercise: str) -> str:
    """A Markdown table per agency, then the first time each agency reached each kind of step."""
    lines = [f"# Exercise debrief: {exercise}", "",
             "| since first report | agency | step | what | incident |", "| --- | --- | --- | --- | --- |"]
    for m in rows:
        lines.append(f"| {_clock(m.since_s)} | {m.agency} | {m.kind} | {m.what} | {str(m.incident_id)[:8]} |")
    firsts: dict[tuple[str, str], float] = {}
    for m in rows:
        firsts.setdefault((m.agency, m.kind), m.since_s)
    agencies = sorted({a for a, _ in firsts})
    lines += ["", "First time each step was reached (h:mm:ss after the first report):", "",
              "| agency | " + " | ".join(KINDS) + " |", "| --- |" + " --- |" * len(KINDS)]
    for agency in agencies:
        cells = [_clock(firsts[(agency, k)]) if (agency, k) in firsts else "-" for k in KINDS]
        lines.append(f"| {agency} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def timeline_png(rows: list[Milestone], exercise: str, path: Path) -> Path:
    """One row per agency, minutes after the first report on the x axis, a marker per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agencies = [ALL, *sorted({m.agency for m in rows} - {ALL})]
    markers = dict(zip(KINDS, "o^*sDv>X"))
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.6 * len(agencies)))
    for kind in KINDS:
        points = [(m.since_s / 60, agencies.index(m.agency)) for m in rows if m.kind == kind]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, marker=markers[kind], s=60, label=kind)
    ax.set_yticks(range(len(agencies)), [a if a != ALL else "incident" for a in agencies])
    ax.set_xlabel("minutes after the exercise's first report")
    ax.set_title(f"Exercise debrief: {exercise}")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=len(KINDS), fontsize="small", frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
