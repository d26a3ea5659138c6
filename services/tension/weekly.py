"""The weekly tension return, pure: per ward its level now, the trend over the week and
the indicators that drove it, from the week's TensionLevelChanged alerts. The command
reads the alerts topic; the query API can serve the same function from its own store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from services.shared.events import TensionLevel, TensionLevelChanged

WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class WardReturn:
    ward_code: str
    ward_name: str
    level: TensionLevel
    level_a_week_ago: TensionLevel
    trend: str  # rising, falling or steady
    peak: TensionLevel
    changes: int
    top_indicators: tuple[tuple[str, float], ...]  # (category, heaviest weighted count seen this week)


def weekly_return(alerts: Iterable[TensionLevelChanged], week_end: datetime, ward_names: dict[str, str],
                  top: int = 3) -> list[WardReturn]:
    week_start = week_end - WEEK
    by_ward: dict[str, list[TensionLevelChanged]] = {}
    for alert in sorted(alerts, key=lambda a: (a.occurred_at, a.new_level.rank)):
        if alert.occurred_at <= week_end:
            by_ward.setdefault(alert.ward_code, []).append(alert)
    out = []
    for code, name in sorted(ward_names.items(), key=lambda kv: kv[1]):
        history = by_ward.get(code, [])
        this_week = [a for a in history if a.occurred_at > week_start]
        before = [a for a in history if a.occurred_at <= week_start]
        then = before[-1].new_level if before else TensionLevel.NORMAL
        now = history[-1].new_level if history else TensionLevel.NORMAL
        heaviest: dict[str, float] = {}
        for alert in this_week:
            for c in alert.top_contributors:
                heaviest[c.category.value] = max(heaviest.get(c.category.value, 0.0), c.weighted)
        ranked = sorted(heaviest.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        out.append(WardReturn(
            ward_code=code, ward_name=name, level=now, level_a_week_ago=then,
            trend="rising" if now.rank > then.rank else "falling" if now.rank < then.rank else "steady",
            peak=max([then, *(a.new_level for a in this_week)], key=lambda lvl: lvl.rank),
            changes=len(this_week), top_indicators=tuple(ranked),
        ))
    return out


def render(rows: list[WardReturn], week_end: datetime) -> str:
    lines = [f"Weekly tension return, week ending {week_end:%Y-%m-%d %H:%M} UTC", "",
             f"{'ward':32} {'level':9} {'trend':8} {'peak':9} {'changes':>7}  top indicators"]
    for r in sorted(rows, key=lambda r: (-r.level.rank, -r.peak.rank, r.ward_name)):
        indicators = ", ".join(f"{cat} ({weight:g})" for cat, weight in r.top_indicators) or "-"
        lines.append(f"{r.ward_name[:32]:32} {r.level.value:9} {r.trend:8} {r.peak.value:9} {r.changes:>7}  {indicators}")
    return "\n".join(lines)
