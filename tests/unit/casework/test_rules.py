"""The casework decisions: ASB Case Review thresholds, the premises ledger, closure clocks and
the safeguarding gate, as pure functions (no Kafka)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casework import rules
from services.casework.config import load_config
from services.casework.inputs import (
    APPLIED, ASB, COMPLAINT, EXTENDED, NOTICE, ORDER, PREMISES, REPORT, RESPONDED, SAFEGUARD, CaseInput,
)
from services.casework.state import CaseState
from services.shared import events as ev

CONFIG = load_config()
DAY = 86400
T0 = int(datetime(2026, 3, 2, 10, tzinfo=timezone.utc).timestamp())  # a Monday
KEY = "k" * 32
UPRN = "100023336956"


def complaint(day: float, *, made_after: float = 1, incident: str | None = None, agency="council", hate=False,
              vulnerable=False, category="antisocial_behaviour") -> CaseInput:
    made = T0 + int(day * DAY)
    return CaseInput(
        ASB, KEY, "live", COMPLAINT, incident or str(uuid.uuid4()), at=made, recorded_at=made, category=category,
        agency=agency, behaviour_at=made - int(made_after * DAY), hate=hate, vulnerable=vulnerable,
    )


def report(day: float, *, agency="council", incident: str | None = None, category="drugs") -> CaseInput:
    at = T0 + int(day * DAY)
    return CaseInput(PREMISES, UPRN, "live", REPORT, incident or str(uuid.uuid4()), at=at, recorded_at=at,
                     category=category, agency=agency)


def run(items, state=None):
    """The alerts of the items folded in order, then the case's picture (as the agent takes it
    once a batch is done)."""
    out = []
    for item in items:
        state, produced = rules.apply(state, item, CONFIG)
        out += produced
    if items:
        out.append(rules.snapshot(state, max(i.recorded_at for i in items), CONFIG))
    return state, out


def test_a_fold_raises_alerts_only_the_picture_is_taken_once_per_batch():
    state, out = run([complaint(0), complaint(60), complaint(120)])
    assert [type(e) for e in out] == [ev.AsbCaseReviewThresholdMet, ev.CaseworkCaseChanged]
    assert out[-1].case_version == state.version == 3


def of_type(out, cls):
    return [e for e in out if isinstance(e, cls)]


def test_three_qualifying_complaints_within_six_months_meet_the_threshold():
    _, out = run([complaint(0), complaint(60), complaint(120)])
    met = of_type(out, ev.AsbCaseReviewThresholdMet)
    assert len(met) == 1
    assert met[0].threshold == 3 and met[0].threshold_basis == "default"
    assert len(met[0].complaints) == 3


def test_the_third_complaint_on_day_182_counts_and_on_day_183_does_not():
    _, inside = run([complaint(0), complaint(90), complaint(182)])
    _, outside = run([complaint(0), complaint(90), complaint(183)])
    assert of_type(inside, ev.AsbCaseReviewThresholdMet)
    assert not of_type(outside, ev.AsbCaseReviewThresholdMet)


def test_a_complaint_made_31_days_after_the_behaviour_does_not_qualify_but_30_does():
    _, late = run([complaint(0), complaint(10), complaint(20, made_after=31)])
    _, in_time = run([complaint(0), complaint(10), complaint(20, made_after=30)])
    assert not of_type(late, ev.AsbCaseReviewThresholdMet)
    assert of_type(in_time, ev.AsbCaseReviewThresholdMet)
    snap = of_type(late, ev.CaseworkCaseChanged)[-1]
    assert [e.qualifies for e in snap.entries] == [True, True, False]


def test_the_same_complaint_to_three_agencies_counts_once():
    incident = str(uuid.uuid4())
    state, out = run([
        complaint(0, incident=incident, agency="council"),
        complaint(0.5, incident=incident, agency="police"),
        complaint(1, incident=incident, agency="housing"),
        complaint(30),
    ])
    assert not of_type(out, ev.AsbCaseReviewThresholdMet)
    assert len(state.entries) == 2
    assert state.entries[incident].agencies == ["council", "housing", "police"]
    assert of_type(out, ev.CaseworkCaseChanged)[-1].counted == 2


def test_hate_motivated_behaviour_lowers_the_threshold():
    _, out = run([complaint(0, hate=True), complaint(5)])
    met = of_type(out, ev.AsbCaseReviewThresholdMet)
    assert len(met) == 1 and met[0].threshold == 2 and met[0].threshold_basis == "hate_motivated"


def test_the_threshold_is_met_once_per_episode_and_again_only_after_the_review():
    state, out = run([complaint(0), complaint(1), complaint(2), complaint(3), complaint(4)])
    assert len(of_type(out, ev.AsbCaseReviewThresholdMet)) == 1
    held = CaseInput(ASB, KEY, "live", RESPONDED, str(uuid.uuid4()), at=T0 + 10 * DAY, recorded_at=T0 + 10 * DAY,
                     value=1)
    state, out = run([held, complaint(11), complaint(12)], state)
    assert not of_type(out, ev.AsbCaseReviewThresholdMet)  # complaints before the review are spent
    _, out = run([complaint(13)], state)
    assert len(of_type(out, ev.AsbCaseReviewThresholdMet)) == 1


def test_response_clocks_count_working_days_across_a_bank_holiday_weekend():
    # Thursday 2 April 2026; Good Friday 3 April and Easter Monday 6 April are bank holidays.
    thursday = int(datetime(2026, 4, 2, 15, tzinfo=timezone.utc).timestamp())
    items = [
        CaseInput(ASB, KEY, "live", COMPLAINT, str(uuid.uuid4()), at=thursday - d * DAY, recorded_at=thursday - d * DAY,
                  category="noise", agency="council", behaviour_at=thursday - d * DAY - DAY)
        for d in (20, 10, 0)
    ]
    _, out = run(items)
    met = of_type(out, ev.AsbCaseReviewThresholdMet)[0]
    decision = next(c for c in met.clocks if c.name == "decision")
    # 10 working days after Thu 2 April: Tue 7 .. Mon 20 April; due at the end of Monday 20 April (London).
    assert decision.due_at == datetime(2026, 4, 20, 23, tzinfo=timezone.utc)
    assert decision.working_days == 10


def test_an_unmet_decision_clock_warns_once_when_overdue():
    state, out = run([complaint(0), complaint(1), complaint(2)])
    clock = next(c for c in of_type(out, ev.AsbCaseReviewThresholdMet)[0].clocks if c.name == "decision")
    assert rules.due(state, clock.due_at - timedelta(seconds=1), CONFIG) == []
    warnings = rules.due(state, clock.due_at, CONFIG)
    assert [(w.clock.name, w.overdue) for w in warnings] == [("decision", True)]
    assert rules.due(state, clock.due_at + timedelta(days=1), CONFIG) == []


def test_three_reports_from_two_agencies_reach_both_premises_rules():
    _, out = run([report(0, agency="council"), report(10, agency="police"), report(20, agency="council")])
    reached = of_type(out, ev.PremisesThresholdReached)
    assert sorted(r.rule_id for r in reached) == ["multi-agency", "repeat-reports"]
    assert all(r.route == ev.CaseRoute.ENFORCEMENT for r in reached)


def test_a_premises_rule_fires_again_only_after_it_stopped_holding():
    state, out = run([report(0), report(1), report(2), report(3)])
    assert len([r for r in of_type(out, ev.PremisesThresholdReached) if r.rule_id == "repeat-reports"]) == 1
    _, out = run([report(200), report(201), report(202)], state)
    assert len([r for r in of_type(out, ev.PremisesThresholdReached) if r.rule_id == "repeat-reports"]) == 1


def test_a_safeguarding_incident_at_the_property_routes_the_case_to_safeguarding():
    cuckooed = CaseInput(PREMISES, UPRN, "live", SAFEGUARD, str(uuid.uuid4()), at=T0, recorded_at=T0,
                         category="criminal_exploitation")
    _, out = run([cuckooed, report(1), report(2), report(3)])
    reached = of_type(out, ev.PremisesThresholdReached)
    assert reached and all(r.route == ev.CaseRoute.SAFEGUARDING for r in reached)


def test_safeguarding_after_an_enforcement_alert_reroutes_the_case():
    state, _ = run([report(0), report(1), report(2)])
    late = CaseInput(PREMISES, UPRN, "live", SAFEGUARD, str(uuid.uuid4()), at=T0 + 3 * DAY, recorded_at=T0 + 3 * DAY)
    _, out = run([late], state)
    assert len(of_type(out, ev.CaseRoutedToSafeguarding)) == 1
    assert of_type(out, ev.CaseworkCaseChanged)[-1].status == "with_safeguarding"


def closure(op, day, value=None):
    at = T0 + int(day * DAY)
    return CaseInput(PREMISES, UPRN, "live", op, str(uuid.uuid4()), at=at, recorded_at=at, agency="council",
                     value=value)


def test_a_closure_notice_starts_the_notice_and_court_clocks_with_warnings_before_each():
    state, _ = run([closure(NOTICE, 0, 24)])
    notice = state.clocks["notice_expires"]
    court = state.clocks["court_deadline"]
    assert notice.due_at - notice.started_at == 24 * 3600 and court.due_at - court.started_at == 48 * 3600
    at = lambda s: datetime.fromtimestamp(s, timezone.utc)  # noqa: E731
    assert rules.due(state, at(notice.due_at - 6 * 3600 - 1), CONFIG) == []
    first = rules.due(state, at(notice.due_at - 6 * 3600), CONFIG)
    assert [w.clock.name for w in first] == ["notice_expires"]
    later = rules.due(state, at(court.due_at), CONFIG)
    assert [(w.clock.name, w.overdue) for w in later] == [("court_deadline", False), ("court_deadline", True)]


def test_an_application_heard_in_time_meets_the_court_clock():
    state, _ = run([closure(NOTICE, 0, 48), closure(APPLIED, 0.5, T0 + 36 * 3600)])
    assert state.clocks["court_deadline"].met_at is not None
    assert [c.name for c in rules.open_clocks(state)] == ["notice_expires"]


def test_an_order_extended_beyond_six_months_in_total_is_refused():
    made = T0 + DAY
    state, _ = run([closure(NOTICE, 0, 24), closure(ORDER, 1, made + 90 * DAY)])
    state, _ = run([closure(EXTENDED, 80, made + 180 * DAY)], state)  # within six calendar months
    with pytest.raises(rules.CaseworkRejected, match="ends_at"):
        rules.apply(state, closure(EXTENDED, 150, made + 190 * DAY), CONFIG)


def test_state_round_trips_through_json():
    state, _ = run([complaint(0), complaint(1), complaint(2), closure(NOTICE, 3, 24)])
    assert rules.snapshot(type(state).loads(state.dumps()), T0, CONFIG) == rules.snapshot(state, T0, CONFIG)


def test_outputs_are_identical_on_replay():
    items = [complaint(0, incident=str(uuid.UUID(int=i))) for i in range(1, 4)]
    _, first = run(items)
    _, second = run(items)
    assert [e.model_dump_json() for e in first] == [e.model_dump_json() for e in second]


# --- the safeguarding gate as a property ---------------------------------------------------------

ops = st.sampled_from([REPORT, REPORT, REPORT, SAFEGUARD])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ops, st.integers(0, 200), st.sampled_from(["council", "police", "housing"])), max_size=25))
def test_once_a_safeguarding_incident_is_known_no_enforcement_alert_goes_out(history):
    state: CaseState | None = None
    gated = False
    for op, day, agency in history:
        item = CaseInput(PREMISES, UPRN, "live", op, str(uuid.uuid4()), at=T0 + day * DAY, recorded_at=T0 + day * DAY,
                         category="drugs", agency=agency)
        state, out = rules.apply(state, item, CONFIG)
        out = [*out, rules.snapshot(state, item.recorded_at, CONFIG)]
        gated = gated or op == SAFEGUARD
        for event in out:
            if isinstance(event, ev.PremisesThresholdReached):
                assert (event.route == ev.CaseRoute.SAFEGUARDING) == gated
            if isinstance(event, ev.CaseworkCaseChanged):
                assert (event.status == "with_safeguarding") == gated


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(6))))
def test_the_same_reports_in_any_arrival_order_raise_the_same_alerts_once(order):
    items = [report(d, agency=a, incident=str(uuid.UUID(int=d + 1)))
             for d, a in zip((0, 3, 6, 9, 12, 15), ("council", "police", "council", "housing", "police", "council"))]
    _, first = run(items)
    _, shuffled = run([items[i] for i in order])
    alerts = lambda out: {e.event_id: e.rule_id for e in out if isinstance(e, ev.PremisesThresholdReached)}  # noqa: E731
    assert alerts(first) == alerts(shuffled) and len(alerts(first)) == 2


def test_a_busy_address_keeps_only_the_newest_entries_and_still_fires_as_before():
    small = CONFIG.model_copy(update={"processing": CONFIG.processing.model_copy(update={"max_entries": 50})})
    state, fired = None, []
    for i in range(400):
        state, out = rules.apply(state, report(i / 100, incident=str(uuid.UUID(int=i + 1))), small)
        fired += of_type(out, ev.PremisesThresholdReached)
    _, unbounded = run([report(i / 100, incident=str(uuid.UUID(int=i + 1))) for i in range(400)])
    assert fired and len(state.entries) == 50 and state.let_go == 350
    assert [f.rule_id for f in fired] == [f.rule_id for f in of_type(unbounded, ev.PremisesThresholdReached)]
    assert len(state.dumps()) < 20_000
    assert type(state).loads(state.dumps()) == state


def test_an_entry_past_the_horizon_is_let_go():
    state, _ = run([complaint(0), complaint(1)])
    far = T0 + CONFIG.horizon + 2 * DAY
    late = CaseInput(ASB, KEY, "live", COMPLAINT, str(uuid.uuid4()), at=far, recorded_at=far, category="antisocial_behaviour",
                     agency="council", behaviour_at=far - DAY)
    state, _ = rules.apply(state, late, CONFIG)
    assert list(state.entries) == [late.incident_id] and state.let_go == 2


def test_max_entries_must_leave_room_for_every_rule():
    from services.casework.config import CaseworkConfig
    raw = CONFIG.model_dump()
    raw["processing"]["max_entries"] = max(r.min_reports for r in CONFIG.premises.rules)
    with pytest.raises(ValueError, match="max_entries"):
        CaseworkConfig.model_validate(raw)
