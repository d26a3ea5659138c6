"""The tension rules over a synthetic four-week history, with no Kafka at all."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.shared.events import TensionLevel
from services.tension.config import HOUR, load_config
from services.tension.rules import (
    Outcome,
    accept,
    expected_milli,
    indicator,
    next_level,
    process,
    to_event,
)
from services.tension.state import ClockState, Indicator, WardState
from tests.tension_history import (
    BOW_EAST,
    START,
    WHITECHAPEL,
    background,
    burst,
    in_time_order,
    report,
    spread,
)

CONFIG = load_config()
EVENING = START + timedelta(days=17, hours=18)
NORMAL, WATCH, ELEVATED, HIGH, CRITICAL = TensionLevel


def run(events, *, batch: int = 500, partitions: int = 1, config=CONFIG):
    """Feed reports through the rules as one by-ward partition would see them."""
    clock, wards, changes = ClockState(), {}, []
    inds = [indicator(e, i % partitions, partitions) for i, e in enumerate(events)]
    inds = [i for i in inds if i is not None]
    for n in range(0, len(inds), batch):
        changes += process(clock, wards, inds[n : n + batch], config).changes
    return changes, wards


@pytest.fixture(scope="module")
def quiet():
    return in_time_order(background())


@pytest.fixture(scope="module")
def with_burst():
    return in_time_order(background(), burst(WHITECHAPEL, EVENING))


def test_quiet_wards_stay_normal(quiet):
    changes, wards = run(quiet)
    assert changes == []
    assert len(wards) == 20 and {w.level for w in wards.values()} == {"normal"}


def test_an_evening_burst_of_hate_incidents_raises_whitechapel_naming_hate_incidents(with_burst):
    changes, _ = run(with_burst)
    first = changes[0]
    assert first.ward == WHITECHAPEL and first.new.rank >= ELEVATED.rank
    assert "hate_incident" in {c.category for c in first.contributors}
    peak = max(changes, key=lambda c: c.new.rank)
    assert peak.contributors[0].category == "hate_incident"
    assert first.contributors[0].incident_ids  # the incidents behind it
    assert EVENING.timestamp() <= first.at_h * HOUR <= (EVENING + timedelta(hours=6)).timestamp()


def test_a_burst_in_whitechapel_leaves_every_other_ward_alone(with_burst):
    changes, _ = run(with_burst)
    assert {c.ward for c in changes} == {WHITECHAPEL}


def test_the_same_reports_spread_over_the_month_raise_nothing():
    changes, _ = run(in_time_order(background(), spread(WHITECHAPEL)))
    assert changes == []


def test_after_the_burst_the_ward_comes_down_once_without_flapping(with_burst):
    changes, wards = run(with_burst)
    directions = ["up" if c.new.rank > c.old.rank else "down" for c in changes]
    assert directions.count("down") == 1 and directions[-1] == "down"
    assert changes[-1].new is NORMAL and wards[WHITECHAPEL].level == "normal"
    assert changes[-1].at_h * HOUR > (EVENING + timedelta(hours=24)).timestamp()


def test_a_busy_ward_is_not_permanently_high():
    changes, wards = run(in_time_order(background(busy={BOW_EAST: 5.0})))
    settled = (START + timedelta(days=7)).timestamp()
    assert all(c.ward == BOW_EAST for c in changes)
    assert [c for c in changes if c.at_h * HOUR >= settled] == []
    assert wards[BOW_EAST].level == "normal"


def test_batches_and_partition_interleaving_do_not_change_the_alerts(with_burst):
    reference, _ = run(with_burst, batch=5000, partitions=1)
    assert run(with_burst, batch=1, partitions=1)[0] == reference
    assert run(with_burst, batch=777, partitions=6)[0] == reference


def test_a_replay_in_another_interleaving_of_source_partitions_gives_the_same_alerts(with_burst):
    inds = [indicator(e, i % 3, 3) for i, e in enumerate(with_burst)]
    by_partition = {p: [x for x in inds if x.source == p] for p in range(3)}
    shuffled = []  # each partition in its own order, but partitions drained in uneven chunks
    cursors = {p: 0 for p in range(3)}
    sizes = {0: 7, 1: 31, 2: 3}
    while any(cursors[p] < len(by_partition[p]) for p in range(3)):
        for p in range(3):
            shuffled += by_partition[p][cursors[p] : cursors[p] + sizes[p]]
            cursors[p] += sizes[p]

    def replay(indicators):
        clock, wards, changes = ClockState(), {}, []
        for n in range(0, len(indicators), 100):
            changes += process(clock, wards, indicators[n : n + 100], CONFIG).changes
        return changes

    assert replay(shuffled) == replay(inds)


# --- late events ----------------------------------------------------------------------------


def _ind(at_s: int, *, source: int = 0, iid: str = "i", category: str = "hate_incident") -> Indicator:
    return Indicator(iid, WHITECHAPEL, category, None, at_s, source, 1)


def test_a_report_within_the_grace_period_counts_in_its_window():
    clock, ward = ClockState(), WardState(WHITECHAPEL)
    base = 1000 * HOUR
    assert accept(clock, ward, _ind(base + 3 * HOUR, iid="a"), CONFIG) is Outcome.COUNTED
    late_but_in_grace = base + 3 * HOUR - int(CONFIG.grace) + 1
    assert accept(clock, ward, _ind(late_but_in_grace, iid="b"), CONFIG) is Outcome.COUNTED
    assert ward.buckets[late_but_in_grace // HOUR]["hate_incident"][1] == 1


def test_a_report_older_than_the_grace_period_is_only_counted_as_late():
    clock, ward = ClockState(), WardState(WHITECHAPEL)
    base = 1000 * HOUR
    accept(clock, ward, _ind(base + 3 * HOUR, iid="a"), CONFIG)
    too_late = base + 3 * HOUR - int(CONFIG.grace) - 1
    assert accept(clock, ward, _ind(too_late, iid="b"), CONFIG) is Outcome.LATE
    assert too_late // HOUR not in ward.buckets


def test_the_same_report_twice_counts_once():
    clock, ward = ClockState(), WardState(WHITECHAPEL)
    assert accept(clock, ward, _ind(1000 * HOUR, iid="a"), CONFIG) is Outcome.COUNTED
    assert accept(clock, ward, _ind(1000 * HOUR, iid="a"), CONFIG) is Outcome.DUPLICATE
    assert ward.days[1000 // 24] == 3000


def test_windows_close_only_when_the_slowest_source_partition_has_passed_them():
    clock, wards = ClockState(), {}
    two = lambda at, src, iid: Indicator(iid, WHITECHAPEL, "noise", None, at, src, 2)  # noqa: E731
    process(clock, wards, [two(1000 * HOUR, 0, "a"), two(1010 * HOUR, 0, "b")], CONFIG)
    assert wards[WHITECHAPEL].evaluated_h == 1000  # partition 1 not seen yet: nothing closes
    process(clock, wards, [two(1005 * HOUR, 1, "c")], CONFIG)
    # the window ending at H is due at H + grace, strictly before the slowest clock (1005 h)
    assert wards[WHITECHAPEL].evaluated_h == 1005 - 2 - 1


# --- baseline -------------------------------------------------------------------------------


def test_a_ward_with_no_history_is_measured_against_the_configured_prior():
    ward = WardState(WHITECHAPEL, since_day=100)
    window = CONFIG.windows[0]
    assert expected_milli(ward, 100 * 24 + 5, window, CONFIG) == round(CONFIG.baseline.prior.daily * 1000)


def test_a_per_ward_prior_replaces_the_default_for_that_ward():
    config = CONFIG.model_copy(
        update={"baseline": CONFIG.baseline.model_copy(
            update={"prior": CONFIG.baseline.prior.model_copy(update={"wards": {WHITECHAPEL: 9.0}})})}
    )
    ward = WardState(WHITECHAPEL, since_day=100)
    assert expected_milli(ward, 100 * 24 + 5, config.windows[0], config) == 9000


def test_the_baseline_moves_from_the_prior_to_what_the_ward_has_shown():
    ward = WardState(WHITECHAPEL, since_day=100, days={d: 20_000 for d in range(100, 128)})
    window = CONFIG.windows[0]
    after_two_days = expected_milli(ward, 102 * 24, window, CONFIG)
    after_four_weeks = expected_milli(ward, 128 * 24, window, CONFIG)
    assert 5000 < after_two_days < after_four_weeks < 20_000
    assert after_four_weeks > 18_000


# --- hysteresis -----------------------------------------------------------------------------


def test_a_level_rises_at_once_to_the_highest_threshold_reached():
    assert next_level(NORMAL, None, 6.0, 50_000, 10, CONFIG) == (CRITICAL, None)


def test_nothing_rises_on_fewer_than_the_minimum_observed_indicators():
    assert next_level(NORMAL, None, 6.0, 3000, 10, CONFIG) == (NORMAL, None)


def test_a_level_holds_while_the_score_stays_above_its_exit_threshold():
    exit_ = CONFIG.levels.high.exit
    assert next_level(HIGH, None, exit_ + 0.01, 50_000, 10, CONFIG) == (HIGH, None)


def test_a_level_drops_only_after_staying_under_its_exit_for_the_cool_down():
    cool_h = int(CONFIG.cool_down // HOUR)
    assert next_level(HIGH, None, 1.0, 50_000, 10, CONFIG) == (HIGH, 10)
    assert next_level(HIGH, 10, 1.0, 50_000, 10 + cool_h - 1, CONFIG) == (HIGH, 10)
    assert next_level(HIGH, 10, 1.0, 50_000, 10 + cool_h, CONFIG) == (NORMAL, None)


def test_a_score_back_above_exit_resets_the_cool_down():
    assert next_level(HIGH, 10, CONFIG.levels.high.exit, 50_000, 12, CONFIG) == (HIGH, None)


# --- the alert ------------------------------------------------------------------------------


def test_the_alert_has_a_deterministic_id_and_names_the_incidents(with_burst):
    change = max(run(with_burst)[0], key=lambda c: c.new.rank)
    one, two = to_event(change, "Whitechapel"), to_event(change, "Whitechapel")
    assert one == two and one.event_id == two.event_id
    assert one.ward_code == WHITECHAPEL and one.new_level.rank >= ELEVATED.rank
    assert one.top_contributors[0].category == "hate_incident"
    assert len(one.top_contributors[0].incident_ids) == one.top_contributors[0].count


def test_exercise_and_test_reports_carry_their_mode_to_be_scored_apart():
    drill = burst(WHITECHAPEL, EVENING, mode="exercise")
    assert {indicator(e, 0, 1).mode for e in drill} == {"exercise"}
    assert indicator(report(WHITECHAPEL, "hate_incident", EVENING, mode="test"), 0, 1).mode == "test"
    assert {indicator(e, 0, 1).mode for e in burst(WHITECHAPEL, EVENING)} == {"live"}


def test_an_exercise_alert_says_so_and_never_shares_a_live_alerts_id(with_burst):
    change = run(with_burst)[0][0]
    live, drill = to_event(change, "Whitechapel"), to_event(change, "Whitechapel", "exercise")
    assert (live.mode.value, drill.mode.value) == ("live", "exercise")
    assert live.event_id != drill.event_id and drill == to_event(change, "Whitechapel", "exercise")


def test_the_police_grading_scales_a_reports_weight():
    evidenced = CONFIG.weight_of("hate_incident", "evidenced")
    potential = CONFIG.weight_of("hate_incident", "potential")
    assert potential == CONFIG.weight_of("hate_incident", None) < evidenced  # potential is not discounted


def test_ward_state_survives_a_round_trip_through_the_changelog(with_burst):
    _, wards = run(with_burst)
    state = wards[WHITECHAPEL]
    assert WardState.loads(state.dumps()) == state
    clock = ClockState(clocks={0: 5, 3: 7}, sources=4, wards=[WHITECHAPEL])
    assert ClockState.loads(clock.dumps()) == clock
