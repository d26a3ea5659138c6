"""The casework view: the ASB cases and premises nearing a threshold or with a statutory
clock running, most urgent first. Pure. Every state is in words, every clock as a date and
"overdue" or "due in", never colour alone."""

from __future__ import annotations

from datetime import datetime
from html import escape

from services.query.board.render import words

STATUS = {"watching": "watching", "threshold_met": "threshold met", "closure_in_force": "closure in force",
          "with_safeguarding": "with safeguarding"}


def _clock(clock: dict, now: datetime) -> str:
    due = datetime.fromisoformat(clock["due_at"])
    left = due - now
    when = f'{due:%a %d %b %H:%M}'
    if left.total_seconds() < 0:
        state = '<strong class="overdue">overdue</strong>'
    elif left.days >= 1:
        state = f"due in {left.days} day{'s' if left.days != 1 else ''}"
    else:
        state = f"due in {int(left.total_seconds() // 3600)} h"
    return f"<li>{words(clock['name'])}: {when} ({state})</li>"


def cases_table(items: list[dict], now: datetime) -> str:
    if not items:
        return '<p class="empty">No case is near a threshold or has a clock running.</p>'
    rows = []
    for c in items:
        subject = f'UPRN {escape(c["uprn"])}' if c["kind"] == "premises" else f'resident {escape(c["complainant_key"][:8])}…'
        clocks = [k for k in c["clocks"] if k.get("met_at") is None]
        progress = f'{c["counted"]} of {c["threshold"]}' if c["threshold"] else str(c["counted"])
        rows.append(
            f'<tr data-case="{escape(c["case_id"])}"><th scope="row">{"Premises" if c["kind"] == "premises" else "ASB case"}: '
            f'{subject}</th><td>{escape(STATUS.get(c["status"], c["status"]))}</td><td>{progress}</td>'
            f'<td>{escape(c["route"])}</td><td><ul class="clocks">{"".join(_clock(k, now) for k in clocks) or "<li>none</li>"}'
            f'</ul></td><td>{escape(", ".join(c["agencies"]) or "-")}</td></tr>'
        )
    return (
        '<table class="cases"><caption class="sr">Cases near a threshold or with a clock running, most urgent first'
        '</caption><thead><tr><th scope="col">Case</th><th scope="col">State</th><th scope="col">Counted</th>'
        '<th scope="col">Route</th><th scope="col">Statutory clocks</th><th scope="col">Agencies</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
    )


MAIN = (
    '<section class="panel" aria-labelledby="cases-h"><h2 id="cases-h">Casework: ASB cases and premises</h2>'
    "<p>OFFICIAL-SENSITIVE: state a reason above to see the cases (audited). Cases one complaint short of the ASB "
    "Case Review threshold, past it, or with a closure clock running.</p>"
    '<div id="cases-body" class="patch"><p class="empty">Sign in to see the cases.</p></div></section>'
)
