"""An incident's page on the board: what is known, the actions the caller may take, its
escalation chain with every M/ETHANE report and CAP message as sent (readable, the XML one
click away), its related reports and its whole timeline. Pure: rendered from the query
service's incident detail (the same read, rules and audit as GET /v1/incidents/{id})."""

from __future__ import annotations

from datetime import datetime
from html import escape

from services.query.board import cap_view
from services.query.board.render import SENSITIVE, when_html, age, incident_link, level_badge, ward_name, words
from services.shared.events import IncidentStatus
from services.shared.wards import Ward

METHANE = {
    "major_incident": "M: major incident declared?", "major_incident_statement": "M: in words",
    "declarations": "M: declarations", "exact_location": "E: exact location", "type": "T: type",
    "hazards": "H: hazards", "access": "A: access", "number_of_casualties": "N: number of casualties",
    "emergency_services_present": "E: emergency services present",
    "emergency_services_required": "E: emergency services required",
}
ENVELOPE = {"event_id", "incident_id", "event_type", "schema_version", "occurred_at", "recorded_at", "source",
            "classification", "mode", "cap_xml", "methane"}
STAND_DOWN = [s for s in IncidentStatus if s.terminal]


def _value(v) -> str:
    if v is None or v == "" or v == [] or v == ():
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    return str(v).replace("_", " ") if isinstance(v, str) and v.isidentifier() else str(v)


def _dl(pairs: list[tuple[str, object]], cls: str = "facts") -> str:
    return f'<dl class="{cls}">' + "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(_value(v))}</dd>" for k, v in pairs) + "</dl>"


def methane(m: dict) -> str:
    pairs = [(label, m.get(key)) for key, label in METHANE.items() if key in m]
    pairs += [(k.replace("_", " "), v) for k, v in m.items() if k not in METHANE]
    return '<h5>M/ETHANE</h5>' + _dl(pairs, "methane")


def cap_message(xml: str) -> str:
    try:
        blocks = cap_view.read(xml)
    except cap_view.Unreadable as exc:
        body = f'<p class="warn">This CAP message could not be read: {escape(str(exc))}.</p>'
    else:
        body = "".join(
            f'<h6>{escape(b.title)}</h6><dl class="cap">'
            + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in b.fields) + "</dl>"
            for b in blocks
        )
    return (f'<h5>CAP 1.2 message</h5>{body}'
            f'<details><summary>The CAP XML as sent</summary><pre class="xml">{escape(xml)}</pre></details>')


def escalation_message(entry: dict) -> str:
    p = entry["payload"]
    kind = entry["event_type"].removeprefix("Escalation")
    levels = p.get("levels") or ([p["level"]] if "level" in p else [])
    what = ", ".join(f"level {lv}" for lv in levels) or "escalation"
    head = f'{escape(kind)}: {escape(what)}' + (f' ({escape(p["level_name"])})' if p.get("level_name") else "")
    facts = [(k.replace("_", " "), p[k]) for k in ("reason", "rule_id", "rule_set_version", "agencies", "final_status",
                                                     "related_incident_ids") if k in p]
    facts += [(k.replace("_", " "), v) for k, v in p.items()
              if k not in ENVELOPE and k not in {"reason", "rule_id", "rule_set_version", "agencies", "final_status",
                                                 "related_incident_ids", "level", "levels", "level_name", "category",
                                                 "severity", "ward_code"}]
    return (
        f'<li class="msg" data-event-type="{escape(entry["event_type"])}"><article aria-label="{head}">'
        f'<h4>{head} <span class="when">{when_html(entry["occurred_at"])}</span></h4>{_dl(facts)}'
        + (methane(p["methane"]) if isinstance(p.get("methane"), dict) else "")
        + (cap_message(p["cap_xml"]) if p.get("cap_xml") else '<p class="empty">No CAP message with this one.</p>')
        + "</article></li>"
    )


def _summary(payload: dict) -> str:
    return "; ".join(f"{k.replace('_', ' ')}: {_value(v)}" for k, v in payload.items() if k not in ENVELOPE)


def actions(i: dict) -> str:
    """Every action the write rules could allow, each hidden until intake says this caller may post it."""
    iid = i["incident_id"]
    out = []
    if i["status"] == "open":
        out.append(f'<button type="button" class="ack" data-id="{iid}" data-needs="IncidentAcknowledged" hidden>'
                   "Acknowledge</button>")
    sev = "".join(f'<option value="{s}">{s}</option>' for s in (1, 2, 3, 4, 5))
    out.append(
        f'<form class="act" data-id="{iid}" data-event="IncidentUpdated" data-needs="IncidentUpdated" hidden>'
        f'<fieldset><legend>Update</legend><label for="u-sev">Severity</label> <select id="u-sev" name="severity">'
        f'<option value="">unchanged</option>{sev}</select> <label for="u-desc">Description</label> '
        f'<input id="u-desc" name="description" maxlength="2000"> <button type="submit">Send update</button></fieldset></form>'
    )
    out.append(
        f'<form class="act" data-id="{iid}" data-event="IncidentLinked" data-needs="IncidentLinked" hidden>'
        '<fieldset><legend>Link as a duplicate of a lead incident</legend><label for="l-lead">Lead incident id</label> '
        '<input id="l-lead" name="lead_incident_id" required size="36" '
        'pattern="[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"> '
        '<label for="l-reason">Reason</label> <input id="l-reason" name="reason" maxlength="500"> '
        '<button type="submit">Link</button></fieldset></form>'
    )
    if not IncidentStatus(i["status"]).terminal:
        options = "".join(f'<option value="{s.value}">{s.value.replace("_", " ")}</option>' for s in STAND_DOWN)
        out.append(
            f'<form class="act" data-id="{iid}" data-event="IncidentStatusChanged" data-needs="IncidentStatusChanged" '
            f'hidden><fieldset><legend>Stand down</legend><label for="s-status">New status</label> '
            f'<select id="s-status" name="status">{options}</select> <label for="s-reason">Reason</label> '
            '<input id="s-reason" name="reason" maxlength="500" required> <button type="submit">Stand down</button>'
            "</fieldset></form>"
        )
    out.append(
        f'<form class="act" data-id="{iid}" data-event="NoteAdded" data-needs="NoteAdded" hidden>'
        '<fieldset><legend>Add a note</legend><label for="n-text">Note</label> '
        '<input id="n-text" name="text" required maxlength="2000" size="50"> <button type="submit">Add note</button>'
        "</fieldset></form>"
    )
    return (
        '<section class="panel" aria-labelledby="act-h"><h3 id="act-h">What you may do</h3>'
        '<p id="act-none" class="empty">Checking what your role may do here...</p>'
        + "".join(out) + '<output id="act-result" role="status"></output></section>'
    )


def people(detail: dict, reason: str | None) -> str:
    if detail.get("people_erased"):
        at = detail.get("people_erased_at")
        body = ("<p>The people involved were erased" + (f" on {escape(at.isoformat(timespec='minutes') if hasattr(at, 'isoformat') else str(at))}" if at else "")
                + ": their details can no longer be read by anyone.</p>")
    elif detail["people"] is None:
        body = ('<p>Restricted fields (the people involved) are not shown: only the cleared roles and the agencies '
                "that own this incident see them.</p>")
    elif not detail["people"]:
        body = "<p>No people are recorded.</p>"
    else:
        rows = "".join(
            f"<tr><td>{words(p.get('role'))}</td><td>{escape(p.get('name') or '')}</td>"
            f"<td>{escape(str(p.get('age') if p.get('age') is not None else ''))}</td>"
            f"<td>{escape(p.get('description') or '')}</td></tr>" for p in detail["people"])
        body = ('<p>Shown because your role or agency is cleared for them' + (f'; your stated reason: {escape(reason)}'
                if reason else "") + ". This read is audited.</p>"
                '<table><caption class="sr">People involved</caption><thead><tr><th scope="col">Role</th>'
                '<th scope="col">Name</th><th scope="col">Age</th><th scope="col">Description</th></tr></thead>'
                f"<tbody>{rows}</tbody></table>")
    return f'<section class="panel" aria-labelledby="ppl-h"><h3 id="ppl-h">People (restricted)</h3>{body}</section>'


def page(detail: dict, wards: dict[str, Ward], reason: str | None, now: datetime) -> str:
    i = detail["incident"]
    title = f'{words(i["category"])} in {ward_name(wards, i["ward_code"])}'
    sensitive = i["classification"] == SENSITIVE
    facts = [
        ("Status", i["status"]), ("Severity", i["severity"]), ("Ward", wards[i["ward_code"]].name
                                                               if i["ward_code"] in wards else i["ward_code"]),
        ("Address", i["address"]), ("what3words", i["what3words"]), ("Description", i["description"]),
        ("Casualties", i["casualties"]), ("Hazards", i["hazards"]), ("Agencies required", i["agencies_required"]),
        ("Dispatched", i["agencies_dispatched"]), ("On scene", i["agencies_on_scene"]),
        ("Major incident declared", i["major_incident_declared"]), ("Classification", i["classification"]),
        ("Mode", i["mode"]), ("Reported by", f'{i["source"]["kind"]} {i["source"]["id"]} ({i["source"]["agency"]})'),
    ]
    escalation_entries = [e for e in detail["timeline"] if e["event_type"].startswith("Escalation")]
    chain = ("".join(escalation_message(e) for e in escalation_entries) if escalation_entries else "")
    related = {str(r["incident_id"]): r for r in detail["linked"] if str(r["incident_id"]) != str(i["incident_id"])}
    why: dict[str, str] = {}  # the correlation's provenance, as the escalation messages give it
    for e in escalation_entries:
        for rid in e["payload"].get("related_incident_ids") or ():
            related.setdefault(str(rid), None)
        for r in e["payload"].get("related") or ():
            if isinstance(r, dict) and r.get("incident_id"):
                related.setdefault(str(r["incident_id"]), None)
                why[str(r["incident_id"])] = "; ".join(
                    f"{k.replace('_', ' ')} {_value(v)}" for k, v in r.items() if k != "incident_id" and v is not None)
    related_items = "".join(
        f'<li data-key="{rid}">' + (
            incident_link(rid, f'{words(r["category"])} in {ward_name(wards, r["ward_code"])}') +
            f', {words(r["status"])}, reported {when_html(r["occurred_at"])}' +
            (" (lead)" if str(i["lead_incident_id"]) == rid else " (linked report)")
            if r is not None else incident_link(rid, f"related report {rid[:8]}") + " (correlated by escalation)"
        ) + (f" ({escape(why[rid])})" if rid in why else "") + "</li>" for rid, r in related.items()
    )
    timeline = "".join(
        f'<tr><td>{when_html(e["occurred_at"])}</td><td>{escape(e["event_type"])}</td>'
        f'<td>{escape(e["source"]["kind"])} {escape(e["source"]["id"])}</td><td>{escape(_summary(e["payload"]))}</td></tr>'
        for e in detail["timeline"]
    )
    return (
        f'<div id="incident" data-incident-id="{i["incident_id"]}" data-status="{escape(i["status"])}" '
        f'data-classification="{escape(i["classification"])}">'
        f'<h2>{title} <span class="sub">{level_badge(i["escalation_level"] or 0)} S{i["severity"] or "?"}, '
        f'{words(i["status"])}, <span class="age" data-since="{i["occurred_at"].isoformat()}">'
        f'{age(i["occurred_at"], now)}</span> old</span></h2>'
        + (f'<p class="sensitive-note">OFFICIAL-SENSITIVE: shown because you stated a reason ({escape(reason or "")}); '
           "this read is audited.</p>" if sensitive else "")
        + '<div class="incident-grid"><div>'
        + f'<section class="panel" aria-labelledby="facts-h"><h3 id="facts-h">What is known</h3>{_dl(facts)}</section>'
        + actions(i) + people(detail, reason)
        + '<section class="panel" aria-labelledby="rel-h"><h3 id="rel-h">Related reports</h3>'
        + (f'<ul id="related">{related_items}</ul>' if related_items else '<p class="empty">No related reports.</p>') + "</section>"
        + '</div><div>'
        + '<section class="panel" aria-labelledby="chain-h"><h3 id="chain-h">Escalation chain</h3>'
        + (f'<ol class="chain">{chain}</ol>' if chain else '<p class="empty">Not escalated.</p>') + "</section>"
        + '<section class="panel" aria-labelledby="tl-h"><h3 id="tl-h">Timeline</h3><table class="timeline">'
        '<caption class="sr">Every fact about this incident, by when it happened</caption><thead><tr>'
        '<th scope="col">When</th><th scope="col">Fact</th><th scope="col">Source</th><th scope="col">Details</th>'
        f"</tr></thead><tbody>{timeline}</tbody></table></section>"
        + "</div></div></div>"
    )
