"""Correlation into lead incidents, and corroboration within a lead's group (pure)."""

import uuid
from datetime import timedelta

import pytest

from services.escalation.config import RulesFileError, parse_rules
from services.escalation.corroboration import MAX_CANDIDATES, Candidate, Window, distance_m, group_key, observe
from tests.unit.escalation.helpers import DEFAULT_RULES, LEVELS, T0

# ~0.0009 degrees of latitude is ~100 m.


def cand(source: str, dlat: float = 0.0, minutes: float = 0, category: str = "violence") -> Candidate:
    return Candidate(incident_id=uuid.uuid4(), partition=hash(source) % 6, category=category, mode="live",
                     source=f"cctv:{source}", lat=51.51 + dlat, lon=-0.02, at=T0 + timedelta(minutes=minutes),
                     recorded_at=T0 + timedelta(minutes=minutes, seconds=30))


def feed(*candidates: Candidate, rules=DEFAULT_RULES):
    window, notices = Window(), []
    for c in candidates:
        window, sent = observe(window, c, rules)
        notices.append(sent)
    return window, notices


def kinds(notices):
    return {(n.kind, n.incident_id) for n in notices}


def test_a_report_with_nothing_near_it_leads():
    a = cand("cam-1")
    _, (notices,) = feed(a)
    assert kinds(notices) == {("lead", a.incident_id)}


def test_a_second_report_of_one_fire_is_linked_to_the_first_with_its_provenance():
    a, b = cand("lfb", category="fire"), cand("public", 0.0009, 4, category="explosion_or_collapse")
    _, (_, notices) = feed(a, b)
    assert kinds(notices) == {("linked", b.incident_id), ("correlated", a.incident_id)}
    linked = next(n for n in notices if n.kind == "linked")
    assert linked.lead == a.incident_id and linked.rule_id == "same-fire-or-collapse"
    (rel,) = next(n for n in notices if n.kind == "correlated").related
    assert rel.incident_id == b.incident_id and rel.rule_id == "same-fire-or-collapse"
    assert 95 < rel.distance_m < 105 and rel.interval_s == 240.0


def test_the_first_to_arrive_leads_even_when_a_later_report_says_it_happened_earlier():
    a, b = cand("cam-1", minutes=2, category="fire"), cand("cam-2", minutes=0, category="fire")
    _, (_, notices) = feed(a, b)
    assert next(n for n in notices if n.kind == "linked").lead == a.incident_id
    assert next(n for n in notices if n.kind == "correlated").related[0].interval_s == -120.0


def test_three_independent_reports_of_a_fight_corroborate_the_lead_once():
    a, b, c, d = cand("cam-1"), cand("cam-2", 0.0009, 1), cand("cam-3", 0.0005, 3), cand("cam-4", 0, 4)
    _, notices = feed(a, b, c, d)
    assert "corroborated" not in {n.kind for n in notices[1]}
    (lead,) = [n for n in notices[2] if n.kind == "corroborated"]
    assert lead.incident_id == a.incident_id and set(lead.members) == {b.incident_id, c.incident_id}
    assert lead.partition == a.partition
    assert "corroborated" not in {n.kind for n in notices[3]}  # already corroborated: d only joins
    assert kinds(notices[3]) == {("linked", d.incident_id), ("correlated", a.incident_id)}


def test_reports_from_one_source_are_duplicates_but_do_not_corroborate():
    _, notices = feed(cand("cam-1"), cand("cam-1", 0.0001, 1), cand("cam-1", 0.0002, 2))
    assert all(n.kind != "corroborated" for ns in notices for n in ns)
    assert [n.kind for n in notices[2]] == ["linked", "correlated"]


def test_reports_too_far_apart_in_space_or_time_are_separate_leads():
    far = cand("cam-2", 0.0036)  # ~400 m
    late = cand("cam-3", 0, 11)  # the disorder window is 10 minutes
    _, notices = feed(cand("cam-1"), far, late)
    assert [n.kind for n in notices[1]] == ["lead"] and [n.kind for n in notices[2]] == ["lead"]


def test_categories_of_different_rules_never_correlate():
    _, notices = feed(cand("a", category="fire"), cand("b", category="flood"))
    assert [n.kind for n in notices[1]] == ["lead"]


def test_a_replayed_candidate_gets_the_same_verdict_again():
    a, b = cand("cam-1"), cand("cam-2", 0.0001, 1)
    window, _ = feed(a, b)
    again, notices = observe(window, b, DEFAULT_RULES)
    assert again == window and [(n.kind, n.lead) for n in notices] == [("linked", a.incident_id)]


def test_exercises_and_modes_are_grouped_apart():
    keys = {group_key("live", "fire", DEFAULT_RULES), group_key("exercise", "fire", DEFAULT_RULES, "ex-1"),
            group_key("exercise", "fire", DEFAULT_RULES, "ex-2"), group_key("test", "fire", DEFAULT_RULES)}
    assert len(keys) == 4
    assert group_key("live", "fire", DEFAULT_RULES) == group_key("live", "explosion_or_collapse", DEFAULT_RULES)


def test_a_category_in_two_correlation_rules_is_refused():
    rule = {"description": "d", "categories": ["fire"], "radius_m": 100, "window_minutes": 5}
    with pytest.raises(RulesFileError, match="'fire' is in correlation rules 'a' and 'b'"):
        parse_rules({"version": "t", "levels": LEVELS, "correlation": [{"id": "a", **rule}, {"id": "b", **rule}]})


def test_a_corroboration_rule_needs_its_categories_correlated():
    with pytest.raises(RulesFileError, match="need a correlation rule"):
        parse_rules({"version": "t", "levels": LEVELS, "corroboration": [
            {"id": "c", "description": "d", "categories": ["violence"], "min_reports": 2, "radius_m": 100,
             "window_minutes": 5, "level": 2}]})


def test_distance_is_haversine():
    a = cand("x")
    b = a.model_copy(update={"lat": a.lat + 0.009})
    assert 995 < distance_m(a, b) < 1005


def test_a_window_keeps_what_its_own_rule_can_still_use_and_a_continuing_chain_keeps_its_lead():
    """A fight's window (same-disorder: 10 minutes, corroboration 5) no longer keeps six hours of
    reports because a flood's rule is three hours long; a disorder that goes on, one report every
    8 minutes for two hours, stays one lead with one alert chain."""
    far = [cand(f"s{i}", dlat=0.01 * (i % 50), minutes=i * 0.1) for i in range(300)]  # apart: each its own lead
    window, _ = feed(*far, cand("late", dlat=0.6, minutes=200))
    assert len(window.candidates) == 1  # only the late one: the rest are past 2 x 10 minutes
    chain = [cand(f"c{i}", dlat=0.0009 * (i % 2), minutes=8 * i) for i in range(15)]
    window, notices = feed(*chain)
    lead = chain[0].incident_id
    assert [n.kind for sent in notices for n in sent if n.incident_id != lead] == ["linked"] * 14
    assert all(n.lead == lead for sent in notices[1:] for n in sent if n.kind == "linked")


def test_a_burst_past_any_borough_keeps_the_window_one_bounded_record():
    """The soak's 70 events/s filled one rule's window to 1 MB, past the broker's message limit,
    and the escalation worker stopped. Past MAX_CANDIDATES the oldest leave first."""
    burst = [cand(f"b{i}", dlat=0.002 * (i % 400), minutes=i * 0.005, category="fire") for i in range(MAX_CANDIDATES + 500)]
    window, _ = feed(*burst)
    assert len(window.candidates) == MAX_CANDIDATES
    assert {c.incident_id for c in window.candidates} == {c.incident_id for c in burst[-MAX_CANDIDATES:]}
    assert len(window.model_dump_json()) < 512 * 1024  # half the broker's default message limit


def _closing(c: Candidate):
    from services.escalation.corroboration import closing

    return closing(c.incident_id, c.partition, c.category, c.mode, c.at)


def test_a_report_near_a_lead_that_is_over_is_a_new_emergency_not_its_duplicate():
    # The soak of 2026-12-03: a fight reported twelve minutes after one nearby was closed was
    # linked to the finished lead and never escalated.
    a, b = cand("cam-1"), cand("cam-2", 0.001, 8)
    _, (_, open_lead) = feed(a, b)
    assert kinds(open_lead) == {("linked", b.incident_id), ("correlated", a.incident_id)}
    window, (_, over, notices) = feed(a, _closing(a), b)
    assert over == [] and kinds(notices) == {("lead", b.incident_id)}
    assert {x.incident_id: x.closed for x in window.candidates} == {a.incident_id: True, b.incident_id: False}


def test_a_report_near_a_duplicate_of_a_finished_lead_leads_too():
    a, b, c = cand("cam-1"), cand("cam-2", 0.001, 5), cand("cam-3", 0.002, 9)  # c: near b, not a
    _, notices = feed(a, b, _closing(a), c)
    assert kinds(notices[1]) == {("linked", b.incident_id), ("correlated", a.incident_id)}
    assert kinds(notices[3]) == {("lead", c.incident_id)}


def test_a_closing_notice_for_a_report_the_window_never_held_changes_nothing():
    a = cand("cam-1")
    window, _ = feed(a)
    stranger = cand("cam-9")
    assert observe(window, _closing(stranger), DEFAULT_RULES) == (window, [])
    closed, _ = observe(window, _closing(a), DEFAULT_RULES)
    assert observe(closed, _closing(a), DEFAULT_RULES) == (closed, [])  # a replayed closing notice


def test_a_report_already_over_when_nominated_gets_its_verdict_and_leads_nothing():
    a = cand("cam-1").model_copy(update={"closed": True})
    b = cand("cam-2", 0.0009, 1)
    _, (first, second) = feed(a, b)
    assert kinds(first) == {("lead", a.incident_id)} and kinds(second) == {("lead", b.incident_id)}


def test_independent_sources_are_distinct_reporting_subjects_whatever_their_role():
    """Intake sets a report's source id to its token's subject and its kind from the token's role:
    one person reporting under two roles is one source (spec: distinct token subjects)."""
    from types import SimpleNamespace

    from services.escalation.corroboration import source_of
    from services.shared.events import Source, SourceKind

    as_operator = SimpleNamespace(source=Source(kind=SourceKind.CONTROL_ROOM, id="op-17"))
    as_camera = SimpleNamespace(source=Source(kind=SourceKind.CCTV, id="op-17"))
    other = SimpleNamespace(source=Source(kind=SourceKind.CCTV, id="cam-9"))
    assert source_of(as_operator) == source_of(as_camera) != source_of(other)
