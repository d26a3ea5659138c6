"""The weekly tension return: one definition, used by `muster tension return` (from the alerts
topic) and the query API's `/v1/tension/return` (from the status store). Pure, no I/O.

- **The week** is an ISO week in Europe/London: from Monday 00:00 London time to the next
  Monday 00:00 (so 167 or 169 hours when the clocks change inside it).
- **Per ward of the borough**: the level at the start (the last change before the week, normal
  when there was none), the level at the end (the last change in the week, else the start's),
  the trend (rising, falling or steady, end against start), the highest level reached, the
  number of changes, the highest score of the week's changes, and the top indicators.
- **Top indicators**: per category, the heaviest weighted count any of the week's changes named
  (with its count) — windows overlap, so adding them up would count the same reports again —
  heaviest first, then by name, three of them.
- Changes are taken in event time (`occurred_at`, then `event_id`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from services.shared.events import TensionLevel

LONDON = ZoneInfo("Europe/London")
TOP_INDICATORS = 3


def week_bounds(any_day: date) -> tuple[date, date]:
    """The Monday that starts the ISO week of `any_day`, and the Monday after."""
    start = any_day - timedelta(days=any_day.weekday())
    return start, start + timedelta(days=7)


def week_instants(any_day: date) -> tuple[datetime, datetime]:
    """The week's start and end as instants (UTC): Monday midnight in London, twice."""
    start, end = week_bounds(any_day)
    return tuple(datetime.combine(d, time(), LONDON).astimezone(timezone.utc) for d in (start, end))


def week_of(instant: datetime) -> date:
    """The London date of an instant (the week it falls in)."""
    return instant.astimezone(LONDON).date()


def _rank(level: str) -> int:
    return TensionLevel(level).rank


def ward_return(ward_code: str, ward_name: str, level_at_start: str, changes: list[Mapping]) -> dict:
    """One ward's row; `changes` are the week's level changes in event-time order."""
    level = changes[-1]["new_level"] if changes else level_at_start
    levels = [level_at_start, *(c["new_level"] for c in changes)]
    highest = max(levels, key=_rank)
    trend = "steady"
    if _rank(level) > _rank(level_at_start):
        trend = "rising"
    elif _rank(level) < _rank(level_at_start):
        trend = "falling"
    heaviest: dict[str, tuple[float, int]] = {}
    for change in changes:
        for contribution in change["top_contributors"] or ():
            category = contribution["category"]
            weighted, count = float(contribution.get("weighted", 0)), int(contribution.get("count", 0))
            if category not in heaviest or (weighted, count) > heaviest[category]:
                heaviest[category] = (weighted, count)
    top = sorted(heaviest, key=lambda c: (-heaviest[c][0], c))[:TOP_INDICATORS]
    return {
        "ward_code": ward_code,
        "ward_name": ward_name,
        "level": level,
        "level_at_start": level_at_start,
        "highest_level": highest,
        "changes": len(changes),
        "trend": trend,
        "peak_score": max((float(c["score"]) for c in changes), default=None),
        "top_indicators": [{"category": c, "weighted": round(heaviest[c][0], 3), "count": heaviest[c][1]} for c in top],
    }


def weekly_return(
    wards: Mapping[str, str], levels_at_start: Mapping[str, str], changes: Iterable[Mapping]
) -> list[dict]:
    """Every ward of the borough, in ward-code order; `changes` are the week's, any order."""
    by_ward: dict[str, list[Mapping]] = defaultdict(list)
    for change in sorted(changes, key=lambda c: (c["occurred_at"], str(c["event_id"]))):
        by_ward[change["ward_code"]].append(change)
    codes = sorted(set(wards) | set(by_ward))
    return [
        ward_return(code, wards.get(code, code), levels_at_start.get(code, TensionLevel.NORMAL.value), by_ward[code])
        for code in codes
    ]


def as_change(alert) -> dict:
    """An alert in the form the status store gives the return (ward_tension_history's columns)."""
    return {"event_id": alert.event_id, "ward_code": alert.ward_code, "new_level": alert.new_level.value,
            "occurred_at": alert.occurred_at, "score": alert.score,
            "top_contributors": [c.model_dump(mode="json") for c in alert.top_contributors]}


def from_alerts(alerts: Iterable, any_day: date, wards: Mapping[str, str]) -> dict:
    """The return of the ISO week of `any_day` from TensionLevelChanged alerts (the CLI's source)."""
    start, end = week_instants(any_day)
    levels_at_start: dict[str, tuple] = {}
    changes = []
    for alert in alerts:
        if alert.occurred_at < start:
            key = (alert.occurred_at, str(alert.event_id))
            if alert.ward_code not in levels_at_start or key > levels_at_start[alert.ward_code][0]:
                levels_at_start[alert.ward_code] = (key, alert.new_level.value)
        elif alert.occurred_at < end:
            changes.append(as_change(alert))
    first, last = week_bounds(any_day)
    return {"week_start": first, "week_end": last,
            "wards": weekly_return(wards, {w: v[1] for w, v in levels_at_start.items()}, changes)}


def render(result: Mapping) -> str:
    lines = [f"Weekly tension return, ISO week {result['week_start']:%G-W%V} "
             f"({result['week_start']:%a %d %b} to {result['week_end']:%a %d %b %Y}, Europe/London)", "",
             f"{'ward':32} {'level':9} {'trend':8} {'highest':9} {'changes':>7}  top indicators"]
    rows = sorted(result["wards"], key=lambda r: (-_rank(r["level"]), -_rank(r["highest_level"]), r["ward_name"]))
    for r in rows:
        indicators = ", ".join(f"{i['category']} ({i['weighted']:g})" for i in r["top_indicators"]) or "-"
        lines.append(f"{r['ward_name'][:32]:32} {r['level']:9} {r['trend']:8} {r['highest_level']:9} "
                     f"{r['changes']:>7}  {indicators}")
    return "\n".join(lines)
