"""The analysts' view: where and when people feel unsafe (hour of the week by ward or by
category, the last four weeks) and each ward's tension over the same four weeks. Pure.
Every heatmap cell carries its count as text; every tension strip its levels in words."""

from __future__ import annotations

from datetime import datetime
from html import escape

from services.query.board import model
from services.query.board.render import tension_class, words
from services.shared.wards import Ward

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap(analysis, wards: dict[str, Ward]) -> str:
    peak = max((n for counts in analysis.heat.values() for n in counts), default=0)
    label = (lambda k: escape(wards[k].name if k in wards else k)) if analysis.by == "ward" else words
    head = "".join(f'<th scope="colgroup" colspan="24">{d}</th>' for d in DAYS)
    hours = "".join(f'<th scope="col" class="h"><span class="sr">{DAYS[i // 24]} </span>{i % 24:02d}</th>'
                    if i % 6 == 0 else f'<th scope="col" class="h"><span class="sr">{DAYS[i // 24]} {i % 24:02d}</span></th>'
                    for i in range(model.HOURS_OF_WEEK))
    rows = []
    for key, counts in sorted(analysis.heat.items(), key=lambda kv: -sum(kv[1])):
        cells = "".join(
            f'<td class="b{model.heat_band(n, peak)}{" d" if i % 24 == 0 else ""}">{n or ""}</td>'
            for i, n in enumerate(counts))
        rows.append(f'<tr><th scope="row">{label(key)}</th>{cells}<td class="total">{sum(counts)}</td></tr>')
    other = "category" if analysis.by == "ward" else "ward"
    return (
        f'<p>Incidents reported in the last four weeks by hour of the week (London time), by {analysis.by}. '
        f'Darker cells are busier; every cell shows its count. <a href="/board/analysis?by={other}">Show by {other}'
        "</a></p>"
        '<div class="heat-wrap" role="region" aria-label="Heatmap, scrolls sideways" tabindex="0"><table class="heat"><caption class="sr">Incidents by hour of the week and '
        f'{analysis.by}</caption><thead><tr><th scope="col" rowspan="2">{analysis.by.title()}</th>{head}'
        f'<th scope="col" rowspan="2">Total</th></tr><tr>{hours}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def tension(analysis, wards: dict[str, Ward], now: datetime) -> str:
    span = (now - analysis.since).total_seconds() or 1
    rows = []
    for code, segments in analysis.segments.items():
        x, bars = 0.0, []
        for s in segments:
            w = 1000 * (s.end - s.start).total_seconds() / span
            bars.append(f'<rect class="{tension_class(s.level)}" x="{x:.2f}" y="0" width="{w:.2f}" height="10">'
                        f'<title>{escape(s.level)} from {s.start:%d %b %H:%M} to {s.end:%d %b %H:%M}</title></rect>')
            x += w
        changes = len(segments) - 1
        rows.append(
            f'<tr data-ward="{escape(code)}"><th scope="row">{escape(wards[code].name)}</th>'
            f'<td class="lvl-now">{escape(segments[-1].level)}</td><td>{escape(model.peak_level(segments))}</td>'
            f'<td>{changes}</td><td class="bars"><svg class="track" viewBox="0 0 1000 10" preserveAspectRatio="none" aria-hidden="true" focusable="false">{"".join(bars)}</svg></td></tr>'
        )
    return (
        '<table class="tension4"><caption class="sr">Each ward\'s tension over the last four weeks</caption>'
        '<thead><tr><th scope="col">Ward</th><th scope="col">Now</th><th scope="col">Highest</th>'
        '<th scope="col">Changes</th><th scope="col">Four weeks, oldest on the left</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
    )


def fragments(analysis, wards: dict[str, Ward], now: datetime) -> dict:
    return {"heatmap": heatmap(analysis, wards), "tension": tension(analysis, wards, now)}


MAIN = (
    '<section class="panel" aria-labelledby="heat-h"><h2 id="heat-h">Where and when people feel unsafe</h2>'
    '<div id="heatmap-body" class="patch"><p class="empty">Sign in to see the analysis.</p></div></section>'
    '<section class="panel" aria-labelledby="t4-h"><h2 id="t4-h">Ward tension, last four weeks</h2>'
    '<div id="tension-body" class="patch"></div></section>'
)
