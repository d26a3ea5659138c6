import uuid
from datetime import datetime, timedelta, timezone

from services.query.board import render
from services.shared.wards import load_wards

NOW = datetime(2026, 11, 20, 22, 0, tzinfo=timezone.utc)


def incident(**over):
    base = dict(incident_id=uuid.uuid4(), classification="OFFICIAL", severity=4, category="knife_crime",
                ward_code="E05009331", ward_name="St Peter's", occurred_at=NOW - timedelta(minutes=75),
                status="open", description="<script>alert(1)</script>")
    base.update(over)
    return base


def test_ages_read_like_a_control_room_clock():
    assert render.age(NOW - timedelta(minutes=3), NOW) == "3 min"
    assert render.age(NOW - timedelta(minutes=75), NOW) == "1 h 15 min"
    assert render.age(NOW - timedelta(days=3), NOW) == "3 days"


def test_an_open_incident_row_has_its_acknowledge_button_and_escapes_text():
    html = render.incidents_panel([incident()], NOW)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'class="ack"' in html and "1 h 15 min" in html
    assert 'class="ack"' not in render.incidents_panel([incident(status="acknowledged")], NOW)


def test_the_banner_is_the_highest_classification_on_screen():
    board = {"incidents": [incident(), incident(classification="OFFICIAL-SENSITIVE")], "escalations": [], "wards": []}
    assert render.banner(board) == "OFFICIAL-SENSITIVE"
    assert render.banner({**board, "incidents": [incident()]}) == "OFFICIAL"


def test_the_page_fills_every_slot_once_and_never_from_data():
    panels = {"banner": "OFFICIAL", "incidents": "{{ward_options}}", "escalations": "", "wards": ""}
    html = render.page(intake_url="http://127.0.0.1:8000", wards=load_wards(), board_panels=panels)
    assert "{{ward_options}}" in html  # data is not a template
    assert 'data-intake="http://127.0.0.1:8000"' in html and "St Peter" in html
