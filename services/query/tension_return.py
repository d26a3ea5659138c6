"""The weekly tension return, per ward: level, trend and top indicators. Pure, no I/O.

Computed from the status store's tension history (the tension room's own return command
uses the same definition): the level at the start of the week is the last change before
it (normal when there was none), the level at the end is the last change before the
week ends; the trend compares the two; the top indicators add up the contributors named
by the week's changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from services.shared.events import TensionLevel

TOP_INDICATORS = 3


def week_bounds(any_day: date) -> tuple[date, date]:
    """The Monday that starts the ISO week of `any_day`, and the Monday after."""
    start = any_day - timedelta(days=any_day.weekday())
    return start, start + timedelta(days=7)


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
    weighted: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for change in changes:
        for contribution in change["top_contributors"] or ():
            weighted[contribution["category"]] += float(contribution.get("weighted", 0))
            counts[contribution["category"]] += int(contribution.get("count", 0))
    top = sorted(weighted, key=lambda c: (-weighted[c], c))[:TOP_INDICATORS]
    return {
        "ward_code": ward_code,
        "ward_name": ward_name,
        "level": level,
        "level_at_start": level_at_start,
        "highest_level": highest,
        "changes": len(changes),
        "trend": trend,
        "peak_score": max((float(c["score"]) for c in changes), default=None),
        "top_indicators": [{"category": c, "weighted": round(weighted[c], 3), "count": counts[c]} for c in top],
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
