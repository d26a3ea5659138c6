"""The board's HTML, rendered on the server. Pure.

One shell (board.html) for every view; each view's content is made of fragments the page
fetches with the caller's token and patches in place when the stream says something changed,
so the markup is made here only. Colour is never the only signal: escalation levels carry a
shape and their number, tension levels their name and a border whose width grows with them,
heatmap cells their count.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from functools import lru_cache
from html import escape
from importlib.resources import files
import re

from services.query.board import model
from services.shared.events import Agency, Category, IncidentStatus, TensionLevel
from services.shared.wards import Ward

SENSITIVE = "OFFICIAL-SENSITIVE"
_SLOT = re.compile(r"\{\{(\w+)\}\}")
LEVELS = {3: ("\u25b2", "Level 3", "major incident"), 2: ("\u25c6", "Level 2", "partnership tactical"),
          1: ("\u25cf", "Level 1", "duty officer")}
STRIP_ITEMS = 4  # escalations listed per level in the strip (the rest counted)
VIEWS = (("board", "/board", "Board"), ("analysis", "/board/analysis", "Analysis"))


@lru_cache(maxsize=16)
def asset(name: str) -> str:
    return (files("services.query.board") / name).read_text()


@lru_cache(maxsize=1)
def ward_map_layout() -> dict[str, tuple[str, int, int]]:
    """ward code -> (short label, column, row) of the tile cartogram (ward_map.csv; see docs/board.md)."""
    rows = csv.DictReader(asset("ward_map.csv").splitlines())
    return {r["ward_code"]: (r["label"], int(r["col"]), int(r["row"])) for r in rows}


def age(since: datetime, now: datetime) -> str:
    minutes = model.minutes_since(since, now)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


def when_html(value: datetime | None) -> str:
    if value is None:
        return "not yet"
    return f'<time datetime="{_iso(value)}">{value.astimezone(timezone.utc):%d %b %H:%M:%S} UTC</time>'


def words(value: str | None) -> str:
    return escape((value or "unknown").replace("_", " "))


def ward_name(wards: dict[str, Ward], code: str | None) -> str:
    ward = wards.get(code or "")
    return escape(ward.name if ward else (code or "unknown ward"))


def level_badge(level: int) -> str:
    if not level:
        return '<span class="lvl lvl-0">none</span>'
    shape, name, _ = LEVELS.get(level, ("?", f"Level {level}", ""))
    return f'<span class="lvl lvl-{level}"><span aria-hidden="true">{shape}</span> L{level}<span class="sr"> ({name})</span></span>'


def tension_class(level: str | None) -> str:
    known = {t.value for t in TensionLevel}
    return f"t-{level}" if level in known else "t-other"


def _age_cell(since: datetime, now: datetime) -> str:
    return f'<td class="age" data-since="{_iso(since)}">{age(since, now)}</td>'


def incident_link(incident_id, text: str) -> str:
    return f'<a href="/board/incidents/{incident_id}">{text}</a>'


# --- the board screen ------------------------------------------------------------------------


def strip(screen, wards: dict[str, Ward], now: datetime) -> str:
    """Live escalations by level and the unacknowledged incidents by severity and age."""
    columns = []
    for level in (3, 2, 1):
        items = screen.escalations.get(level, [])
        shape, name, meaning = LEVELS[level]
        cards = []
        for e in items[:STRIP_ITEMS]:
            owner = screen.owners.get(e["incident_id"])
            acked = owner is not None and owner["acknowledged_at"] is not None
            cards.append(
                f'<li class="esc lvl-{level}" data-key="{e["incident_id"]}" data-level="{level}">'
                + incident_link(e["incident_id"], f'{words(e["category"])}, {ward_name(wards, e["ward_code"])}')
                + f' <span class="age" data-since="{_iso(e["raised_at"])}">{age(e["raised_at"], now)}</span>'
                + f'<span class="meta">{escape(", ".join(e["agencies"]) or "no agencies")}; '
                + ("acknowledged" if acked else '<strong class="unack"><span aria-hidden="true">!</span> not acknowledged</strong>')
                + ("; sensitive" if e["classification"] == SENSITIVE else "")
                + "</span></li>"
            )
        more = len(items) - STRIP_ITEMS
        columns.append(
            f'<div class="esc-col lvl-{level}" data-level="{level}"><h3><span aria-hidden="true">{shape}</span> '
            f'{name}: {meaning} <span class="n">({len(items)})</span></h3>'
            + (f'<ul>{"".join(cards)}</ul>' if cards else '<p class="empty">None live.</p>')
            + (f'<p class="more">and {more} more</p>' if more > 0 else "")
            + "</div>"
        )
    grid_rows = "".join(
        f'<tr><th scope="row">S{sev}</th>'
        + "".join(f'<td class="{"hot" if n and (sev >= 4 or i >= 2) else ""}">{n or ""}</td>' for i, n in enumerate(counts))
        + "</tr>"
        for sev, counts in sorted(screen.grid.items(), reverse=True) if sev
    )
    oldest = "".join(
        f'<li data-key="{r["incident_id"]}">S{r["severity"] or "?"} '
        + incident_link(r["incident_id"], f'{words(r["category"])}, {ward_name(wards, r["ward_code"])}')
        + f' <span class="age" data-since="{_iso(r["occurred_at"])}">{age(r["occurred_at"], now)}</span></li>'
        for r in screen.oldest
    )
    unack = (
        f'<div class="unack-col"><h3>Not acknowledged <span class="n">({screen.unacknowledged})</span></h3>'
        '<table class="grid"><caption class="sr">Open incidents nobody has acknowledged, by severity and age</caption>'
        '<thead><tr><th scope="col">Severity</th>'
        + "".join(f'<th scope="col">{label}</th>' for label, _ in model.AGE_BUCKETS)
        + f"</tr></thead><tbody>{grid_rows}</tbody></table>"
        + (f'<h4>Waiting longest</h4><ol class="oldest">{oldest}</ol>' if oldest else "")
        + "</div>"
    )
    return f'<div class="strip-grid">{"".join(columns)}{unack}</div>'


def chain_row(chain: model.Chain, wards: dict[str, Ward], now: datetime) -> str:
    lead = chain.lead
    n = len(chain.members)
    reports = f'{n} reports' if n > 1 else "1 report"
    status = words(lead["status"])
    waiting = chain.waiting
    if waiting:
        also = "" if waiting == 1 and lead["status"] == "open" and lead["acknowledged_at"] is None else f" {waiting} of {n}"
        status += f'; <strong class="unack"><span aria-hidden="true">!</span>{also} not acknowledged</strong>'
    ack = ""
    if lead["status"] == "open":
        ack = (f'<button type="button" class="ack" data-id="{lead["incident_id"]}" data-needs="IncidentAcknowledged" '
               f'hidden>Acknowledge<span class="sr"> {words(lead["category"])} in {ward_name(wards, lead["ward_code"])}'
               "</span></button>")
    cls = ' <span class="cls-s">SENSITIVE</span>' if chain.sensitive else ""
    agencies = sorted({a for m in chain.members for a in (m["agencies_required"] or ())})
    return (
        f'<tr class="chain lvl-{chain.level}" data-key="{chain.key}" data-incident-id="{lead["incident_id"]}" '
        f'data-status="{escape(lead["status"])}" data-ward="{escape(lead["ward_code"] or "")}">'
        f'<td>{level_badge(chain.level)}</td>'
        f'<td class="sev s{chain.severity}">S{chain.severity or "?"}</td>'
        f'<td>{incident_link(lead["incident_id"], words(lead["category"]))}{cls}</td>'
        f'<td>{ward_name(wards, lead["ward_code"])}</td>'
        f'{_age_cell(chain.since, now)}'
        f'<td class="status">{status}</td>'
        f'<td class="reports">{reports}</td>'
        f'<td class="agencies">{escape(", ".join(agencies))}</td>'
        f'<td class="desc">{escape(lead["description"] or "")}</td>'
        f"<td>{ack}</td></tr>"
    )


def incident_list(page: model.Page, wards: dict[str, Ward], now: datetime) -> str:
    if not page.items:
        return '<p class="empty">No open incidents match.</p>'
    rows = "".join(chain_row(c, wards, now) for c in page.items)
    pager = (
        f'<nav class="pager" aria-label="Pages of the incident list">'
        f'<button type="button" data-page="{page.number - 1}"{" disabled" if page.number <= 1 else ""}>Previous page</button>'
        f' <span>Page {page.number} of {page.pages}</span> '
        f'<button type="button" data-page="{page.number + 1}"{" disabled" if page.number >= page.pages else ""}>Next page</button>'
        "</nav>"
    )
    return (
        '<table class="incidents"><caption class="sr">Open incidents, one row per alert chain: escalated first, '
        'then not acknowledged, most severe, oldest</caption><thead><tr>'
        '<th scope="col">Level</th><th scope="col">Sev</th><th scope="col">Category</th><th scope="col">Ward</th>'
        '<th scope="col">Age</th><th scope="col">Status</th><th scope="col">Reports</th><th scope="col">Agencies</th>'
        '<th scope="col">Description</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>'
        f"<tbody>{rows}</tbody></table>{pager}"
    )


def silenced(silences: list[dict]) -> str:
    """A ward tile's note of the operators' silences in force (category, until when; reason and who on hover)."""
    return "".join(
        f'<span class="tsilenced" title="{escape(s["reason"])} ({escape(s["silenced_by"]["id"])})">'
        f'{escape(s["category"].replace("_", " "))} silenced until {s["until"]:%H:%M}</span>'
        for s in silences
    )


def ward_map(wards: dict[str, Ward], tension: dict, open_by_ward: dict[str, int], selected: list[str],
             silences: dict[str, list[dict]] | None = None) -> str:
    """The borough as a tile cartogram: one button per ward at its place, level by name and border."""
    layout = ward_map_layout()
    tiles = []
    for code, w in sorted(wards.items()):
        label, col, row = layout.get(code, (w.name, 0, 0))
        t = tension.get(code)
        level = t["level"] if t else "normal"
        n = open_by_ward.get(code, 0)
        pressed = "true" if code in selected else "false"
        place = f" c{col} r{row}" if col else ""
        full = f'<span class="sr"> ({escape(w.name)})</span>' if label != w.name else ""
        tiles.append(
            f'<button type="button" class="tile {tension_class(level)}{place}" data-key="{escape(code)}" '
            f'data-ward="{escape(code)}" aria-pressed="{pressed}">'
            f'<span class="tname">{escape(label)}{full}</span><span class="tlevel"><span class="sr">tension </span>'
            f'{escape(level)}</span><span class="topen">{n} open</span>{silenced((silences or {}).get(code, []))}</button>'
        )
    return f'<div class="cartogram">{"".join(tiles)}</div>'


def legend() -> str:
    items = "".join(
        f'<li><span class="swatch tile {tension_class(t.value)}" aria-hidden="true"></span>{escape(t.value)}</li>'
        for t in TensionLevel
    )
    return f'<ul class="legend" aria-label="Tension levels, lowest to highest">{items}</ul>'


def banner(sensitive: bool) -> str:
    return SENSITIVE if sensitive else "OFFICIAL"


def screen_fragments(screen, wards: dict[str, Ward], selected_wards: list[str], now: datetime) -> dict:
    return {
        "banner": banner(screen.sensitive_shown),
        "strip": strip(screen, wards, now),
        "list": incident_list(screen.page, wards, now),
        "map": ward_map(wards, screen.tension, screen.open_by_ward, selected_wards, screen.silences),
        "count": f"{screen.page.chains} alert chains, {screen.page.incidents} reports",
        "level3": sorted(str(e["incident_id"]) for e in screen.escalations.get(3, [])),
    }


# --- the shell --------------------------------------------------------------------------------


def _options(values: list[tuple[str, str]], selected: list[str], blank: str) -> str:
    out = [f'<option value="">{escape(blank)}</option>']
    out += [f'<option value="{escape(v)}"{" selected" if v in selected else ""}>{escape(label)}</option>'
            for v, label in values]
    return "".join(out)


def filter_options(wards: dict[str, Ward], chosen: dict[str, list[str]]) -> dict[str, str]:
    open_statuses = [s for s in IncidentStatus if not s.terminal]
    return {
        "ward_filter": _options([(c, w.name) for c, w in sorted(wards.items(), key=lambda kv: kv[1].name)],
                                chosen.get("ward", []), "every ward"),
        "category_filter": _options([(c.value, c.value.replace("_", " ")) for c in Category],
                                    chosen.get("category", []), "every category"),
        "status_filter": _options([(s.value, s.value.replace("_", " ")) for s in open_statuses],
                                  chosen.get("status", []), "every open status"),
        "agency_filter": _options([(a.value, a.value) for a in Agency], chosen.get("agency", []), "every agency"),
    }


def page(*, view: str, title: str, main: str, intake_url: str) -> str:
    current = ' aria-current="page"'
    nav = "".join(f'<a href="{href}"{current if name == view else ""}>{label}</a>' for name, href, label in VIEWS)
    values = {"intake_url": escape(intake_url), "view": view, "title": escape(title), "nav": nav, "main": main}
    return _SLOT.sub(lambda m: values[m.group(1)], asset("board.html"))  # one pass: data never fills a slot


def board_main(wards: dict[str, Ward], chosen: dict[str, list[str]]) -> str:
    values = {**filter_options(wards, chosen), "legend": legend(),
              "raise_category": _options([(c.value, c.value.replace("_", " ")) for c in Category], [], "choose"),
              "raise_ward": _options([(c, w.name) for c, w in sorted(wards.items(), key=lambda kv: kv[1].name)], [],
                                     "choose")}
    return _SLOT.sub(lambda m: values[m.group(1)], asset("screen.html"))
