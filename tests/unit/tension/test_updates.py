"""IncidentUpdated changing a report's category or grading moves its weight, deterministically."""

from __future__ import annotations

import random
import zlib
from datetime import timedelta

import pytest

from services.shared import events as ev
from services.tension.config import HOUR, load_config
from services.tension.rules import Outcome, indicator, process, recategorise
from services.tension.state import UPDATE, ClockState, Indicator, WardState
from tests.factories import fact
from tests.tension_history import START, WHITECHAPEL, background, in_time_order, report

CONFIG = load_config()
EVENING = START + timedelta(days=17, hours=18)


def update(event: ev.IncidentReported, after: timedelta, **changes) -> ev.IncidentUpdated:
    return fact(ev.IncidentUpdated, event.incident_id, event.occurred_at + after, **changes)


def recategorised_evening(n: int = 16) -> list:
    """An evening of noise reports in Whitechapel, each re-classified as a hate incident by the
    police an hour later."""
    rng = random.Random(5)
    reports = [report(WHITECHAPEL, "noise", EVENING + timedelta(minutes=15 * i), rng=rng) for i in range(n)]
    return reports + [update(r, timedelta(hours=1), category="hate_incident") for r in reports]


def run(events, *, partitions: int = 1, batch: int = 500):
    """Like the by-ward partition would see them: each fact on its incident's source partition."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.event_type != "IncidentReported"))
    inds = [indicator(e, zlib.crc32(str(e.incident_id).encode()) % partitions, partitions) for e in ordered]
    inds = [i for i in inds if i is not None]
    clock, wards, changes = ClockState(), {}, []
    for n in range(0, len(inds), batch):
        changes += process(clock, wards, inds[n : n + batch], CONFIG).changes
    return changes, wards


@pytest.fixture(scope="module")
def history():
    return in_time_order(background()) + recategorised_evening()


def test_reports_recategorised_as_hate_incidents_raise_the_ward_naming_hate_incidents(history):
    changes, _ = run(history)
    assert changes and {c.ward for c in changes} == {WHITECHAPEL}
    assert changes[0].contributors[0].category == "hate_incident"


def test_without_the_updates_the_same_reports_raise_nothing(history):
    changes, _ = run([e for e in history if e.event_type == "IncidentReported"])
    assert changes == []


def test_updates_give_the_same_alerts_at_any_batching_and_partitioning(history):
    reference, _ = run(history, batch=5000)
    assert reference
    assert run(history, batch=1)[0] == reference
    assert run(history, batch=333, partitions=6)[0] == reference


def _ind(iid: str, at_s: int, category: str = "antisocial_behaviour", **kw) -> Indicator:
    return Indicator(iid, WHITECHAPEL, category, kw.get("grading"), at_s, 0, 1)


def _update(iid: str, at_s: int, category: str | None = "hate_incident", grading: str | None = None) -> Indicator:
    return Indicator(iid, None, category, grading, at_s, 0, 1, UPDATE)


def _hour_total(ward: WardState, h: int, category: str) -> int:
    return (ward.buckets.get(h) or {}).get(category, [0])[0]


def test_a_move_takes_effect_only_for_windows_after_the_updates_hour():
    base = 1000 * HOUR
    clock, wards = ClockState(), {}
    process(clock, wards, [_ind("a", base + 60), _update("a", base + 2 * HOUR + 60)], CONFIG)
    ward = wards[WHITECHAPEL]
    assert ward.moves and _hour_total(ward, 1000, "hate_incident") == 0  # pending: windows up to hour 1002 see the old one
    process(clock, wards, [_ind("later", base + 12 * HOUR)], CONFIG)  # the watermark passes hour 1003
    assert not ward.moves
    assert _hour_total(ward, 1000, "hate_incident") == CONFIG.weight_of("hate_incident", None)
    assert _hour_total(ward, 1000, "antisocial_behaviour") == 0
    assert ward.days[1000 // 24] == CONFIG.weight_of("hate_incident", None)  # the baseline moves too


def test_a_grading_change_rescales_the_reports_weight_and_keeps_its_category():
    base = 1000 * HOUR
    clock, wards = ClockState(), {}
    process(clock, wards, [_ind("a", base, "hate_incident"), _update("a", base + 60, None, "evidenced")], CONFIG)
    process(clock, wards, [_ind("later", base + 12 * HOUR)], CONFIG)
    assert _hour_total(wards[WHITECHAPEL], 1000, "hate_incident") == CONFIG.weight_of("hate_incident", "evidenced")


def test_an_update_seen_twice_moves_the_weight_once():
    base = 1000 * HOUR
    clock, wards = ClockState(), {}
    result = process(clock, wards, [_ind("a", base), _update("a", base + 60), _update("a", base + 60)], CONFIG)
    assert (result.moved, result.duplicates) == (1, 1)


@pytest.mark.parametrize(
    ("update_at", "outcome"),
    [
        (1000 * HOUR + (CONFIG.update_within_h + 1) * HOUR, Outcome.UNMATCHED),  # too long after its report
        (1000 * HOUR - 3 * HOUR - int(CONFIG.grace), Outcome.LATE),  # behind its partition's clock
    ],
)
def test_an_update_too_old_or_too_late_moves_nothing(update_at, outcome):
    clock, wards = ClockState(), {}
    process(clock, wards, [_ind("a", 1000 * HOUR), _ind("b", 1000 * HOUR + 1)], CONFIG)
    if outcome is Outcome.LATE:
        process(clock, wards, [_ind("c", 1000 * HOUR)], CONFIG)
    assert recategorise(clock, wards, _update("nobody", 1000 * HOUR + 60), CONFIG) is Outcome.UNMATCHED
    assert recategorise(clock, wards, _update("a", update_at), CONFIG) is outcome


def test_an_update_that_changes_nothing_tension_counts_is_not_an_indicator():
    first = report(WHITECHAPEL, "noise", EVENING)
    assert indicator(update(first, timedelta(minutes=5), severity=4), 0, 1) is None
    moved = indicator(update(first, timedelta(minutes=5), category="violence"), 0, 1)
    assert moved is not None and moved.kind == UPDATE and moved.ward is None and moved.category == "violence"
    assert Indicator.unpack(moved.pack()) == moved
