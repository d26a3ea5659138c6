"""The board's pure parts: alert chains and their order, what needs action, the heatmap and
tension strips, the CAP reader, and the HTML they become (escaped, colour never alone)."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.query.board import analysis_page, cap_view, incident_page, model, render
from services.shared.wards import load_wards

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 22, 0, tzinfo=timezone.utc)
WARDS = load_wards()


def row(**over):
    base = dict(incident_id=uuid.uuid4(), classification="OFFICIAL", severity=3, category="knife_crime",
                ward_code="E05009331", occurred_at=NOW - timedelta(minutes=75), status="open", acknowledged_at=None,
                escalation_level=0, lead_incident_id=None, description="<script>alert(1)</script>",
                agencies_required=["police"], agencies_dispatched=[], source_agency="council",
                major_incident_declared=False)
    base.update(over)
    base.setdefault("chain", base["lead_incident_id"] or base["incident_id"])  # a lead the reader may see
    return base


def test_ages_read_like_a_control_room_clock():
    assert render.age(NOW - timedelta(minutes=3), NOW) == "3 min"
    assert render.age(NOW - timedelta(minutes=75), NOW) == "1 h 15 min"
    assert render.age(NOW - timedelta(days=3), NOW) == "3 days"


def test_a_lead_and_its_linked_reports_are_one_chain_led_by_the_lead():
    lead = row(severity=2)
    dup1 = row(lead_incident_id=lead["incident_id"], severity=5, occurred_at=NOW - timedelta(minutes=200))
    dup2 = row(lead_incident_id=lead["incident_id"], status="acknowledged", acknowledged_at=NOW)
    other = row()
    chains = {c.key: c for c in model.chains([dup1, other, lead, dup2])}
    chain = chains[lead["incident_id"]]
    assert chain.lead is lead and len(chain.members) == 3 and len(chains) == 2
    assert chain.severity == 5 and chain.waiting == 2 and chain.since == dup1["occurred_at"]


def test_chains_order_escalated_then_unacknowledged_then_severity_then_oldest():
    escalated = row(escalation_level=2, severity=1, status="acknowledged", acknowledged_at=NOW)
    waiting_old = row(severity=3, occurred_at=NOW - timedelta(hours=2))
    waiting_new = row(severity=3, occurred_at=NOW - timedelta(minutes=5))
    waiting_severe = row(severity=5, occurred_at=NOW - timedelta(minutes=1))
    acknowledged = row(severity=5, status="acknowledged", acknowledged_at=NOW)
    order = [c.lead for c in model.chains([acknowledged, waiting_new, waiting_old, escalated, waiting_severe])]
    assert order == [escalated, waiting_severe, waiting_old, waiting_new, acknowledged]


def test_a_page_keeps_the_databases_order_and_counts():
    a, b = row(), row()
    summaries = [{"chain": b["incident_id"], "chains": 60, "incidents": 75}, {"chain": a["incident_id"], "chains": 60,
                                                                             "incidents": 75}]
    page = model.page_of(summaries, [a, b], 2)
    assert [c.lead for c in page.items] == [b, a] and page.pages == 3 and page.incidents == 75
    assert model.offset_of(3) == 2 * model.PAGE_SIZE


def test_unacknowledged_counts_fill_a_severity_by_age_grid():
    grid = model.unacknowledged_grid([{"severity": 5, "bucket": 0, "n": 2}, {"severity": 5, "bucket": 3, "n": 7},
                                      {"severity": 1, "bucket": 1, "n": 1}])
    assert grid[5] == [2, 0, 0, 7] and grid[1] == [0, 1, 0, 0] and grid[3] == [0, 0, 0, 0]
    assert model.AGE_EDGES == [5, 15, 60]


def test_live_escalations_show_each_incident_once_at_its_highest_open_level_newest_first():
    i, j = uuid.uuid4(), uuid.uuid4()
    rows = [dict(incident_id=i, level=1, raised_at=NOW - timedelta(minutes=9), stood_down_at=None),
            dict(incident_id=i, level=3, raised_at=NOW - timedelta(minutes=2), stood_down_at=None),
            dict(incident_id=j, level=3, raised_at=NOW - timedelta(minutes=1), stood_down_at=None),
            dict(incident_id=uuid.uuid4(), level=2, raised_at=NOW, stood_down_at=NOW)]
    live = model.live_escalations(rows)
    assert [r["incident_id"] for r in live[3]] == [j, i] and live[1] == [] and live[2] == []


def test_the_heatmap_puts_each_count_at_its_hour_of_the_week():
    heat = model.heatmap([{"key": "E05009331", "dow": 1, "hour": 0, "n": 3}, {"key": "E05009331", "dow": 7, "hour": 23,
                                                                           "n": 1}], ["E05009331", "E05009319"])
    assert heat["E05009331"][0] == 3 and heat["E05009331"][167] == 1 and sum(heat["E05009319"]) == 0
    assert [model.heat_band(n, 8) for n in (0, 1, 8)] == [0, 1, 4]


def test_tension_segments_cover_four_weeks_from_the_level_at_their_start():
    since = NOW - timedelta(weeks=4)
    changes = [{"occurred_at": since + timedelta(days=3), "new_level": "high"},
               {"occurred_at": since + timedelta(days=10), "new_level": "elevated"}]
    segs = model.tension_segments("normal", changes, since, NOW)
    assert [s.level for s in segs] == ["normal", "high", "elevated"]
    assert segs[0].start == since and segs[-1].end == NOW and model.peak_level(segs) == "high"
    assert model.level_rank("watch") == 1 and model.level_rank("critical") == 4  # watch: between normal and elevated


def test_a_chain_row_escapes_text_and_says_its_level_in_words_and_shape():
    html = render.chain_row(model.chains([row(escalation_level=3)])[0], WARDS, NOW)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\u25b2" in html and "L3" in html and "not acknowledged" in html and 'data-needs="IncidentAcknowledged"' in html
    acked = render.chain_row(model.chains([row(status="acknowledged", acknowledged_at=NOW)])[0], WARDS, NOW)
    assert 'class="ack"' not in acked


def test_the_ward_map_places_every_ward_once_and_names_each_level():
    layout = render.ward_map_layout()
    assert set(layout) == set(WARDS) and len({(c, r) for _, c, r in layout.values()}) == len(WARDS)
    html = render.ward_map(WARDS, {"E05009319": {"level": "critical"}}, {"E05009319": 12}, ["E05009319"])
    assert html.count('class="tile') == 20 and "12 open" in html and '>critical</span>' in html
    assert 'data-ward="E05009319" aria-pressed="true"' in html


def test_a_level_the_board_does_not_know_yet_still_renders_by_its_name():
    html = render.ward_map(WARDS, {"E05009319": {"level": "watch"}}, {}, [])
    assert ">watch</span>" in html and ("t-watch" in html or "t-other" in html)


CAP = """<?xml version='1.0' encoding='UTF-8'?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>urn:uuid:1</identifier><sender>s</sender>
<sent>2026-11-20T22:00:00-00:00</sent><status>Actual</status><msgType>Update</msgType><scope>Restricted</scope>
<references>s,urn:uuid:0,2026-11-20T21:00:00-00:00 s,urn:uuid:00,2026-11-20T21:30:00-00:00</references>
<info><category>Fire</category><event>fire</event><headline>Level 3 &lt;b&gt;</headline>
<parameter><valueName>level</valueName><value>3</value></parameter><novel>kept</novel>
<area><areaDesc>Bow East ward</areaDesc><geocode><valueName>ONS ward code</valueName><value>E05009319</value></geocode></area>
</info></alert>"""


def test_a_cap_message_reads_as_labelled_fields_and_keeps_what_it_does_not_know():
    blocks = cap_view.read(CAP)
    assert [b.title for b in blocks] == ["Message", "Information", "Area"]
    header, info, area = (dict(b.fields) for b in blocks)
    assert header["Message type"] == "Update" and header["References"].count("\n") == 1
    assert info["Headline"] == "Level 3 <b>" and info["level"] == "3" and info["novel"] == "kept"
    assert area["Geocode: ONS ward code"] == "E05009319"
    with pytest.raises(cap_view.Unreadable):
        cap_view.read("<alert")
    with pytest.raises(cap_view.Unreadable):
        cap_view.read('<feed xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>')
    external = ('<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><note>&x;</note></alert>')
    assert cap_view.read(external)[0].fields == [("Note", "")]  # an external entity is never read


def _detail(**over):
    i = row(escalation_level=3)
    incident = {**i, "ward_name": "St Peter's", "address": "1 High St", "what3words": None, "casualties": None,
                "hazards": [], "agencies_on_scene": [], "police_grading": None, "mode": "live",
                "source": {"kind": "control_room", "id": "op-1", "agency": "council"}, "reported_at": NOW,
                "last_event_at": NOW, "updated_at": NOW, "version": 2}
    related = uuid.uuid4()
    timeline = [
        {"event_id": uuid.uuid4(), "event_type": "IncidentReported", "occurred_at": NOW, "recorded_at": NOW,
         "classification": "OFFICIAL", "mode": "live", "source": incident["source"], "payload": {"severity": 3}},
        {"event_id": uuid.uuid4(), "event_type": "EscalationRaised", "occurred_at": NOW, "recorded_at": NOW,
         "classification": "OFFICIAL", "mode": "live", "source": incident["source"],
         "payload": {"level": 3, "level_name": "major incident", "rule_id": "r1", "reason": "why",
                     "related_incident_ids": [str(related)], "cap_xml": CAP,
                     "related": [{"incident_id": str(related), "rule_id": "fire-nearby", "distance_m": 120.0,
                                  "interval_s": 90.0}],
                     "methane": {"major_incident": False, "access": "not yet known", "declared_by": "op-3"}}},
    ]
    d = {"incident": incident, "people": None, "restricted_redacted": True, "timeline": timeline, "escalations": [],
         "linked": []}
    d.update(over)
    return d, related


def test_an_incident_page_shows_its_escalation_chain_readably_and_hides_people_unless_cleared():
    detail, related = _detail()
    html = incident_page.page(detail, WARDS, None, NOW)
    assert "M: major incident declared?" in html and "not yet known" in html and "declared by" in html
    assert "Message type" in html and "&lt;alert" in html  # the XML as sent, escaped, behind a disclosure
    assert f'/board/incidents/{related}' in html and "correlated" in html and "distance m 120.0" in html
    assert "are not shown" in html and "<script>" not in html
    for needs in ("IncidentAcknowledged", "IncidentUpdated", "IncidentLinked", "IncidentStatusChanged"):
        assert f'data-needs="{needs}" hidden' in html
    cleared = incident_page.page({**detail, "people": [{"role": "victim", "name": "<i>A</i>"}]}, WARDS, "safeguarding", NOW)
    assert "&lt;i&gt;A&lt;/i&gt;" in cleared and "safeguarding" in cleared


def test_the_heatmap_and_tension_strips_carry_text_not_only_colour():
    since = NOW - timedelta(weeks=4)
    data = type("A", (), {})()
    data.by, data.since = "ward", since
    data.heat = {"E05009331": [0] * 167 + [9]}
    data.segments = {"E05009331": model.tension_segments("normal", [], since, NOW)}
    html = analysis_page.heatmap(data, WARDS)
    assert ">9</td>" in html and "St Peter" in html and 'tabindex="0"' in html
    strips = analysis_page.tension(data, {"E05009331": WARDS["E05009331"]}, NOW)
    assert ">normal</td>" in strips and "<title>normal from" in strips


def test_the_page_fills_every_slot_once_and_never_from_data():
    html = render.page(view="board", title="Board", main="{{intake_url}}", intake_url="http://127.0.0.1:8000")
    assert "{{intake_url}}" in html  # data is not a template
    assert 'data-intake="http://127.0.0.1:8000"' in html and 'aria-current="page"' in html
    main = render.board_main(WARDS, {"ward": ["E05009331"]})
    assert '<option value="E05009331" selected>' in main and "{{" not in main
