"""The board's casework view renders every state in words and every clock as a date."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.query.board.casework_page import cases_table

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def case(**over) -> dict:
    base = {
        "case_id": "c1", "kind": "premises", "uprn": "100023336956", "complainant_key": None, "status": "threshold_met",
        "counted": 3, "threshold": 3, "route": "safeguarding", "agencies": ["council", "police"],
        "clocks": [{"name": "court_deadline", "due_at": (NOW - timedelta(hours=1)).isoformat(), "met_at": None},
                   {"name": "notice_expires", "due_at": (NOW + timedelta(days=2)).isoformat(), "met_at": None},
                   {"name": "decision", "due_at": NOW.isoformat(), "met_at": NOW.isoformat()}],
    }
    return {**base, **over}


def test_a_case_shows_its_state_route_and_open_clocks_in_words():
    html = cases_table([case()], NOW)
    assert "threshold met" in html and "safeguarding" in html and "3 of 3" in html
    assert "court deadline" in html and "overdue" in html and "due in 2 days" in html
    assert "decision" not in html  # a met clock is not shown


def test_a_resident_is_shown_by_a_short_key_never_more_and_text_is_escaped():
    html = cases_table([case(kind="asb", uprn=None, complainant_key="<b>abcdefghijklmnop", agencies=[])], NOW)
    assert "abcdefghijklmnop" not in html and "&lt;b&gt;abcde…" in html


def test_no_case_says_so():
    assert "No case" in cases_table([], NOW)
