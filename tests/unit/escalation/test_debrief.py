"""The exercise debrief (pure), from the exercise's whole message chain."""

import pytest

from services.escalation.debrief import ALL, DebriefError, milestones, table, timeline_png
from tests.unit.escalation.test_golden import EXERCISE, chain

pytestmark = pytest.mark.unit


def _log():
    facts, c = chain("poplar-fire-exercise")
    return [*facts, *(d.event for d in c.deliveries if d.agency is None)]


def test_milestones_run_from_the_exercises_first_report_per_agency():
    rows = milestones(_log(), EXERCISE)
    assert rows[0].since_s == 0 and rows[0].kind == "report" and rows[0].agency == ALL
    assert [m.since_s for m in rows] == sorted(m.since_s for m in rows)
    kinds = {(m.agency, m.kind) for m in rows}
    assert {("fire", "level"), ("fire", "declared"), ("fire", "M/ETHANE"), ("fire", "arrived"),
            ("fire", "stood down"), (ALL, "acknowledged")} <= kinds
    (declared,) = [m for m in rows if m.kind == "declared"]
    first_level = min(m.since_s for m in rows if m.kind == "level")
    assert declared.since_s > first_level  # the alert came first; the commander declared later


def test_a_record_read_twice_is_one_milestone():
    log = _log()
    assert milestones(log + log, EXERCISE) == milestones(log, EXERCISE)


def test_live_events_and_other_exercises_are_left_out():
    rows = milestones(_log(), EXERCISE)
    with pytest.raises(DebriefError, match="no report names exercise 'Other'"):
        milestones(_log(), "Other")
    live, _ = chain("poplar-fire")
    assert len(milestones([*_log(), *live], EXERCISE)) == len(rows)


def test_the_table_lists_every_milestone_and_each_agencys_first_times(tmp_path):
    rows = milestones(_log(), EXERCISE)
    text = table(rows, EXERCISE)
    assert text.startswith(f"# Exercise debrief: {EXERCISE}")
    assert text.count("\n| ") >= len(rows)
    assert "| fire | " in text.split("First time")[1]


def test_the_timeline_is_a_png_picture(tmp_path):
    path = timeline_png(milestones(_log(), EXERCISE), EXERCISE, tmp_path / "t.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
