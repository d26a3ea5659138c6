"""The control-room board's HTML, rendered on the server from the board's data. Pure.

The page is one template (board.html); the three panels are fragments the page replaces
when the stream says something changed, so the markup is made in one place only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from html import escape
from importlib.resources import files
import re

from services.shared.events import Category

SENSITIVE = "OFFICIAL-SENSITIVE"
_SLOT = re.compile(r"\{\{(\w+)\}\}")


@lru_cache(maxsize=4)
def asset(name: str) -> str:
    return (files("services.query.board") / name).read_text()


def age(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


def incidents_panel(incidents: list[dict], now: datetime) -> str:
    if not incidents:
        return '<p class="empty">No open incidents.</p>'
    rows = []
    for i in incidents:
        ack = (
            f'<button type="button" class="ack" data-id="{i["incident_id"]}">Acknowledge</button>'
            if i["status"] == "open" else ""
        )
        cls = "sensitive" if i["classification"] == SENSITIVE else "official"
        rows.append(
            f'<tr class="incident sev-{i["severity"] or 0}" data-incident-id="{i["incident_id"]}" '
            f'data-status="{escape(i["status"])}">'
            f'<td class="cls {cls}">{escape(i["classification"])}</td>'
            f'<td class="sev">{i["severity"] or "?"}</td>'
            f'<td>{escape((i["category"] or "unknown").replace("_", " "))}</td>'
            f'<td>{escape(i["ward_name"] or i["ward_code"] or "unknown")}</td>'
            f'<td class="age" data-since="{_iso(i["occurred_at"])}">{age(i["occurred_at"], now)}</td>'
            f'<td class="status">{escape(i["status"])}</td>'
            f'<td class="desc">{escape(i["description"] or "")}</td>'
            f"<td>{ack}</td></tr>"
        )
    return (
        '<table class="incidents"><thead><tr><th>Class</th><th>Sev</th><th>Category</th><th>Ward</th>'
        "<th>Age</th><th>Status</th><th>Description</th><th></th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    )


def escalations_panel(escalations: list[dict], now: datetime) -> str:
    if not escalations:
        return '<p class="empty">No live escalations.</p>'
    rows = [
        f'<tr class="escalation level-{e["level"]}" data-incident-id="{e["incident_id"]}">'
        f'<td class="cls">{escape(e["classification"])}</td>'
        f'<td>L{e["level"]} {escape(e["level_name"] or "")}</td>'
        f'<td>{escape((e["category"] or "").replace("_", " "))}</td>'
        f'<td>{escape(e["ward_code"] or "")}</td>'
        f'<td>{escape(", ".join(e["agencies"]))}</td>'
        f'<td class="age" data-since="{_iso(e["raised_at"])}">{age(e["raised_at"], now)}</td></tr>'
        for e in escalations if e["raised_at"] is not None
    ]
    return (
        '<table class="escalations"><thead><tr><th>Class</th><th>Level</th><th>Category</th><th>Ward</th>'
        "<th>Agencies</th><th>Raised</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def wards_panel(wards: list[dict], silences: list[dict] = ()) -> str:
    hushed: dict[str, list[dict]] = {}
    for s in silences:
        hushed.setdefault(s["ward_code"], []).append(s)
    cells = []
    for w in wards:
        level = w["tension"]["level"] if w["tension"] else "normal"
        notes = "".join(
            f'<span class="silenced" title="{escape(s["reason"])} ({escape(s["silenced_by"]["id"])})">'
            f'{escape(s["category"].replace("_", " "))} silenced until {s["until"]:%H:%M}</span>'
            for s in hushed.get(w["code"], ())
        )
        cells.append(
            f'<li class="ward tension-{escape(level)}" data-ward="{escape(w["code"])}">'
            f'<span class="name">{escape(w["name"])}</span><span class="level">{escape(level)}</span>{notes}</li>'
        )
    return '<ul class="wards">' + "".join(cells) + "</ul>"


def banner(board: dict) -> str:
    """The highest classification on the screen."""
    records = [*board["incidents"], *board["escalations"], *board.get("silences", ())]
    return SENSITIVE if any(r["classification"] == SENSITIVE for r in records) else "OFFICIAL"


def panels(board: dict, now: datetime) -> dict[str, str]:
    return {
        "banner": banner(board),
        "incidents": incidents_panel(board["incidents"], now),
        "escalations": escalations_panel(board["escalations"], now),
        "wards": wards_panel(board["wards"], board.get("silences", ())),
    }


def _options(values: list[tuple[str, str]]) -> str:
    return "".join(f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in values)


def page(*, intake_url: str, wards: dict, board_panels: dict[str, str] | None) -> str:
    signed_out = '<p class="empty">Paste an operator token above to see the board.</p>'
    p = board_panels or {"banner": "OFFICIAL", "incidents": signed_out, "escalations": "", "wards": ""}
    values = {
        "intake_url": escape(intake_url),
        "banner": escape(p["banner"]),
        "incidents": p["incidents"],
        "escalations": p["escalations"],
        "wards": p["wards"],
        "category_options": _options([(c.value, c.value.replace("_", " ")) for c in Category]),
        "ward_options": _options([(code, w.name) for code, w in sorted(wards.items(), key=lambda kv: kv[1].name)]),
    }
    return _SLOT.sub(lambda m: values[m.group(1)], asset("board.html"))  # one pass: data never fills a slot
