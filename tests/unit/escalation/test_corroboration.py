import uuid
from datetime import timedelta

from services.escalation.corroboration import Candidate, Window, distance_m, observe
from tests.unit.escalation.helpers import DEFAULT_RULES, T0

# ~0.0009 degrees of latitude is ~100 m.


def cand(source: str, dlat: float = 0.0, minutes: float = 0, category: str = "violence") -> Candidate:
    return Candidate(incident_id=uuid.uuid4(), partition=hash(source) % 6, category=category, mode="live",
                     source=f"cctv:{source}", lat=51.51 + dlat, lon=-0.02, at=T0 + timedelta(minutes=minutes))


def feed(*candidates: Candidate):
    window, notices = Window(), []
    for c in candidates:
        window, sent = observe(window, c, DEFAULT_RULES)
        notices.append(sent)
    return window, notices


def test_three_independent_reports_close_in_space_and_time_form_one_group_led_by_the_earliest():
    a, b, c = cand("cam-1"), cand("cam-2", 0.0009, 1), cand("cam-3", 0.0005, 3)
    _, notices = feed(a, b, c)
    assert notices[0] == [] and notices[1] == []
    kinds = {(n.kind, n.incident_id) for n in notices[2]}
    assert kinds == {("corroborated", a.incident_id), ("linked", b.incident_id), ("linked", c.incident_id)}
    lead = next(n for n in notices[2] if n.kind == "corroborated")
    assert set(lead.members) == {b.incident_id, c.incident_id} and lead.partition == a.partition


def test_reports_from_one_source_are_not_independent():
    _, notices = feed(cand("cam-1"), cand("cam-1", 0.0001, 1), cand("cam-1", 0.0002, 2))
    assert notices == [[], [], []]


def test_reports_too_far_apart_do_not_corroborate():
    _, notices = feed(cand("cam-1"), cand("cam-2", 0.0009), cand("cam-3", 0.0036))  # ~400 m
    assert notices[2] == []


def test_reports_too_far_apart_in_time_do_not_corroborate():
    _, notices = feed(cand("cam-1"), cand("cam-2", 0, 2), cand("cam-3", 0, 9))
    assert notices[2] == []


def test_a_later_report_joins_the_existing_group_instead_of_forming_another():
    a, b, c, d = cand("cam-1"), cand("cam-2", 0, 1), cand("cam-3", 0, 2), cand("cam-4", 0, 3)
    _, notices = feed(a, b, c, d)
    assert {(n.kind, n.incident_id, n.lead) for n in notices[3] if n.kind == "linked"} == {("linked", d.incident_id, a.incident_id)}
    assert [n.members for n in notices[3] if n.kind == "corroborated"] == [(d.incident_id,)]


def test_a_replayed_candidate_changes_nothing():
    a = cand("cam-1")
    window, _ = feed(a)
    again, notices = observe(window, a, DEFAULT_RULES)
    assert again == window and notices == []


def test_old_candidates_are_forgotten():
    window, _ = feed(cand("cam-1"), cand("cam-2", 0, 60))
    assert len(window.candidates) == 1


def test_distance_is_in_metres():
    assert 95 < distance_m(cand("a"), cand("b", 0.0009)) < 105
