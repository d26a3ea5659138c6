"""What the board shows, worked out from rows: alert chains, what needs action, the
hour-of-week heatmap and each ward's last four weeks. Pure: no I/O, no clock of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.shared.events import TensionLevel

PAGE_SIZE = 25  # chains per page of the list: what fits below the action strip at 1920x1080
AGE_BUCKETS: tuple[tuple[str, int | None], ...] = (("under 5 min", 5), ("5-15 min", 15), ("15-60 min", 60), ("1 h or more", None))
SEVERITIES = (5, 4, 3, 2, 1)
HOURS_OF_WEEK = 7 * 24
TENSION_WEEKS = 4


def level_rank(level: str | None) -> int:
    """A tension level's place in the scale; a level this code does not know yet ranks just above normal."""
    try:
        return TensionLevel(level).rank if level else 0
    except ValueError:
        return 1


def minutes_since(since: datetime, now: datetime) -> int:
    return max(0, int((now - since).total_seconds() // 60))


# --- the list: one row per alert chain ---------------------------------------------------------


@dataclass
class Chain:
    """A lead incident and the reports linked to it, as one row."""

    key: uuid.UUID
    lead: Mapping
    others: list[Mapping] = field(default_factory=list)

    @property
    def members(self) -> list[Mapping]:
        return [self.lead, *self.others]

    @property
    def level(self) -> int:
        return max(m["escalation_level"] or 0 for m in self.members)

    @property
    def severity(self) -> int:
        return max(m["severity"] or 0 for m in self.members)

    @property
    def waiting(self) -> int:
        """Reports in the chain still open that nobody has acknowledged."""
        return sum(m["status"] == "open" and m["acknowledged_at"] is None for m in self.members)

    @property
    def unacknowledged(self) -> bool:
        return self.waiting > 0

    @property
    def since(self) -> datetime:
        return min(m["occurred_at"] for m in self.members)

    @property
    def sensitive(self) -> bool:
        return any(m["classification"] == "OFFICIAL-SENSITIVE" for m in self.members)

    def sort_key(self) -> tuple:
        """Escalated first, then unacknowledged, then the most severe, then the oldest."""
        return (-self.level, not self.unacknowledged, -self.severity, self.since, str(self.key))


def chains(rows: Iterable[Mapping]) -> list[Chain]:
    """Group incidents by alert chain (each row's `chain`, board/queries.py's CHAIN: a report linked
    to a lead the caller may see joins the lead's row), in board order."""
    by_key: dict[uuid.UUID, list[Mapping]] = {}
    for r in rows:
        by_key.setdefault(r["chain"], []).append(r)
    out = []
    for key, members in by_key.items():
        members.sort(key=lambda m: (m["incident_id"] != key, m["occurred_at"], str(m["incident_id"])))
        out.append(Chain(key, members[0], members[1:]))
    out.sort(key=Chain.sort_key)
    return out


@dataclass(frozen=True)
class Page:
    items: list[Chain]
    number: int  # 1-based
    pages: int
    chains: int
    incidents: int


def offset_of(number: int, size: int = PAGE_SIZE) -> int:
    return (max(1, number) - 1) * size


def page_of(summaries: list[Mapping], rows: Iterable[Mapping], number: int, size: int = PAGE_SIZE) -> Page:
    """The page's chains in the order the database ranked them (`summaries`), each with its rows."""
    grouped = {c.key: c for c in chains(rows)}
    items = [grouped[s["chain"]] for s in summaries if s["chain"] in grouped]
    total = summaries[0]["chains"] if summaries else 0
    incidents = int(summaries[0]["incidents"]) if summaries else 0
    return Page(items, number, max(1, -(-total // size)), total, incidents)


AGE_EDGES = [upper for _, upper in AGE_BUCKETS if upper is not None]  # lower edges of the buckets after the first


def unacknowledged_grid(counts: Iterable[Mapping]) -> dict[int, list[int]]:
    """severity -> count per age bucket, from (severity, bucket, n) rows."""
    grid = {s: [0] * len(AGE_BUCKETS) for s in SEVERITIES}
    for r in counts:
        grid.setdefault(r["severity"] or 0, [0] * len(AGE_BUCKETS))[min(r["bucket"], len(AGE_BUCKETS) - 1)] += r["n"]
    return grid


def live_escalations(rows: Iterable[Mapping]) -> dict[int, list[Mapping]]:
    """level -> the open escalations at that level, newest first; each incident only at its highest open level."""
    highest: dict[uuid.UUID, Mapping] = {}
    for r in rows:
        if r["raised_at"] is None or r["stood_down_at"] is not None:
            continue
        best = highest.get(r["incident_id"])
        if best is None or r["level"] > best["level"]:
            highest[r["incident_id"]] = r
    out: dict[int, list[Mapping]] = {3: [], 2: [], 1: []}
    for r in highest.values():
        out.setdefault(r["level"], []).append(r)
    for items in out.values():
        items.sort(key=lambda r: (r["raised_at"], str(r["incident_id"])), reverse=True)
    return out


# --- analysts: when and where, and each ward's last four weeks ------------------------------------


def heatmap(rows: Iterable[Mapping], keys: Iterable[str]) -> dict[str, list[int]]:
    """key (ward code or category) -> 168 counts, Monday 00:00 first (ISO day 1-7, hour 0-23)."""
    out = {k: [0] * HOURS_OF_WEEK for k in keys}
    for r in rows:
        key = r["key"] or "unknown"
        out.setdefault(key, [0] * HOURS_OF_WEEK)[(r["dow"] - 1) * 24 + r["hour"]] += r["n"]
    return out


def heat_band(count: int, peak: int) -> int:
    """0 (none) to 4 (the busiest quarter), relative to the busiest cell."""
    if count <= 0 or peak <= 0:
        return 0
    return min(4, 1 + (4 * (count - 1)) // peak)


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    level: str


def tension_segments(start_level: str, changes: list[Mapping], since: datetime, now: datetime) -> list[Segment]:
    """A ward's levels over [since, now] as consecutive segments, from its level at `since` and its changes."""
    segments: list[Segment] = []
    level, at = start_level, since
    for c in sorted(changes, key=lambda c: c["occurred_at"]):
        when = min(max(c["occurred_at"], since), now)
        if when > at:
            segments.append(Segment(at, when, level))
        level, at = c["new_level"], when
    if now > at or not segments:
        segments.append(Segment(at, now, level))
    return segments


def peak_level(segments: list[Segment]) -> str:
    return max(segments, key=lambda s: level_rank(s.level)).level


def weeks_back(now: datetime, weeks: int = TENSION_WEEKS) -> datetime:
    return now - timedelta(weeks=weeks)
