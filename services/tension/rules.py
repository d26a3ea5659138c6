"""The tension rules, pure: no Kafka, no clock, no I/O.

Event time only. Each partition of the incidents topic has a clock: the hour of the
newest `occurred_at` seen from it. A report older than its partition's clock minus the
grace period is late (metric only). The watermark of a by-ward partition is the slowest
source clock; a window ending at hour H is evaluated once the watermark reaches H plus
the grace period, so every report that can still count is in. Because lateness depends
only on the order within each source partition (fixed in Kafka), a replay gives the same
alerts as living through the same events, however the partitions interleave.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from services.shared.events import (
    IncidentReported,
    Mode,
    Source,
    SourceKind,
    TensionContribution,
    TensionLevel,
    TensionLevelChanged,
    derived_event_id,
)
from services.tension.config import HOUR, TensionConfig, Window
from services.tension.facts import TensionFact
from services.tension.state import LIVE, REPORT, UPDATE, ClockState, Indicator, WardState

LEVELS = tuple(TensionLevel)


class Outcome(Enum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"
    LATE = "late"
    MOVED = "moved"  # an update changed a counted report's category or grading
    UNMATCHED = "unmatched"  # an update about no report counted here (another partition, late, too old)


@dataclass(frozen=True, slots=True)
class Contribution:
    category: str
    weight_milli: int
    count: int
    incident_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LevelChange:
    ward: str
    old: TensionLevel
    new: TensionLevel
    at_h: int
    score: float
    observed_milli: int
    expected_milli: int
    window: str
    start_h: int
    end_h: int
    contributors: tuple[Contribution, ...]


# --- intake of one indicator ---


def ward_partition(ward: str, partitions: int) -> int:
    """The by-ward partition that owns a ward: a stable hash, the same in every process."""
    return zlib.crc32(ward.encode()) % partitions


def indicator(event: IncidentReported | TensionFact, partition: int, partitions: int) -> Indicator | None:
    """What a report, or an update changing its category or grading, contributes (other
    updates: nothing). Exercise and test facts carry their mode: they are scored apart and
    never drive live alerts."""
    grading = event.police_grading.value if event.police_grading else None
    at = int(event.occurred_at.timestamp())
    mode = event.mode.value
    if event.event_type == "IncidentUpdated":
        if event.category is None and grading is None:
            return None
        category = event.category.value if event.category else None
        return Indicator(str(event.incident_id), None, category, grading, at, partition, partitions, UPDATE, mode)
    return Indicator(
        incident_id=str(event.incident_id), ward=event.location.ward_code, category=event.category.value,
        grading=grading, at=at, source=partition, sources=partitions, mode=mode,
    )


def accept(clock: ClockState, ward: WardState, ind: Indicator, config: TensionConfig) -> Outcome:
    """Count one report in its ward's bucket unless it is late or already counted."""
    hour = ind.at // HOUR
    newest = clock.clocks.get(ind.source)
    clock.sources = max(clock.sources, ind.sources)
    if newest is None or hour > newest:
        clock.clocks[ind.source] = hour
    if ind.ward not in clock.wards:
        clock.wards.append(ind.ward)
    bucket = ward.buckets.get(hour)
    if bucket is not None and _holds(bucket, ind.incident_id):
        return Outcome.DUPLICATE
    if newest is not None and ind.at < newest * HOUR - config.grace:
        return Outcome.LATE
    if ward.since_day is None or ward.evaluated_h is None:
        ward.since_day = hour // 24 if ward.since_day is None else ward.since_day
        ward.evaluated_h = hour
    weight = config.weight_of(ind.category, ind.grading)
    if bucket is None:
        bucket = ward.buckets[hour] = {}
    cell = bucket.get(ind.category)
    if cell is None:
        cell = bucket[ind.category] = [0, 0, []]
    cell[0] += weight
    cell[1] += 1
    cell[2].append(_entry(ind.at, ind.incident_id, ind.grading))
    ward.days[hour // 24] = ward.days.get(hour // 24, 0) + weight
    return Outcome.COUNTED


def _entry(at: int, incident_id: str, grading: str | None) -> list:
    return [at, incident_id] if grading is None else [at, incident_id, grading]


def _holds(bucket: dict, incident_id: str) -> bool:
    return any(incident_id == entry[1] for cell in bucket.values() for entry in cell[2])


# --- updates: a changed category or grading moves the report's weight -------------------------
#
# Deterministic like a report: an update older than its partition's clock minus the grace is
# late. Otherwise no window ending after the update's hour U has been evaluated yet, in any
# interleaving, so the move is kept pending and applied just before the window ending at
# U + 1 is evaluated: windows up to U see the old category, later ones the new, whatever the
# batching. The report must be within `update_within_h` of the update (its id is still kept).


def recategorise(clock: ClockState, wards: dict[str, WardState], ind: Indicator, config: TensionConfig) -> Outcome:
    newest = clock.clocks.get(ind.source)
    if newest is not None and ind.at < newest * HOUR - config.grace:
        return Outcome.LATE
    at_h = ind.at // HOUR
    for code in clock.wards:
        ward = wards.get(code)
        found = None if ward is None else find_report(ward, ind.incident_id, at_h, config.update_within_h)
        if found is None:
            continue
        report_h, at, category, grading = found
        new = (ind.category or category, ind.grading or grading)
        if new == (category, grading):
            return Outcome.DUPLICATE
        after_h = max([at_h, *(m[0] for m in ward.moves if m[3] == ind.incident_id)])  # keep their order
        ward.moves.append([after_h, report_h, at, ind.incident_id, category, grading, *new])
        return Outcome.MOVED
    return Outcome.UNMATCHED


def find_report(ward: WardState, incident_id: str, at_h: int, within_h: int) -> tuple | None:
    """(report hour, occurred_at, category, grading) of a counted report, pending moves applied."""
    found = None
    for h in range(at_h - within_h, at_h + within_h + 1):
        for category, cell in (ward.buckets.get(h) or {}).items():
            for entry in cell[2]:
                if entry[1] == incident_id:
                    found = (h, entry[0], category, entry[2] if len(entry) > 2 else None)
    for move in ward.moves:
        if move[3] == incident_id:
            found = (move[1], move[2], move[6], move[7])
    return found


def apply_moves(ward: WardState, at_h: int, config: TensionConfig) -> None:
    """Apply, in arrival order, the pending moves that take effect before the window ending at `at_h`."""
    pending = []
    for move in ward.moves:
        if move[0] >= at_h:
            pending.append(move)
            continue
        _, report_h, at, incident_id, old_category, old_grading, new_category, new_grading = move
        bucket = ward.buckets.get(report_h) or {}
        old = bucket.get(old_category)
        index = next((i for i, e in enumerate(old[2]) if e[1] == incident_id), None) if old else None
        if index is None:
            continue
        old_weight, new_weight = config.weight_of(old_category, old_grading), config.weight_of(new_category, new_grading)
        del old[2][index]
        old[0] -= old_weight
        old[1] -= 1
        if old[1] == 0:
            del bucket[old_category]
        cell = bucket.get(new_category)
        if cell is None:
            cell = bucket[new_category] = [0, 0, []]
        cell[0] += new_weight
        cell[1] += 1
        cell[2].append(_entry(at, incident_id, new_grading))
        ward.days[report_h // 24] = ward.days.get(report_h // 24, 0) + new_weight - old_weight
    ward.moves = pending


def watermark(clock: ClockState) -> int | None:
    """The slowest source partition's clock (hour), once every source has been seen."""
    if clock.sources == 0 or any(p not in clock.clocks for p in range(clock.sources)):
        return None
    return min(clock.clocks.values())


def closed_until(clock: ClockState, config: TensionConfig) -> int | None:
    """The last window end (hour) that no report still in grace can change."""
    mark = watermark(clock)
    if mark is None:
        return None
    return int((mark * HOUR - config.grace) // HOUR)


@dataclass(slots=True)
class Processed:
    changes: list[LevelChange]
    counted: int = 0
    duplicates: int = 0
    late: int = 0
    moved: int = 0


def process(
    clock: ClockState, wards: dict[str, WardState], indicators: list[Indicator], config: TensionConfig
) -> Processed:
    """One batch of one by-ward partition: count each report, then evaluate every window
    the watermark has closed, ward by ward. `wards` gains a state for each new ward."""
    result = Processed(changes=[])
    for ind in indicators:
        if ind.kind == REPORT:
            ward = wards.get(ind.ward)
            if ward is None:
                ward = wards[ind.ward] = WardState(ward=ind.ward)
            outcome = accept(clock, ward, ind, config)
        else:
            outcome = recategorise(clock, wards, ind, config)
        if outcome is Outcome.COUNTED:
            result.counted += 1
        elif outcome is Outcome.LATE:
            result.late += 1
        elif outcome is Outcome.MOVED:
            result.moved += 1
        elif outcome is Outcome.DUPLICATE:
            result.duplicates += 1
    until = closed_until(clock, config)
    if until is not None:
        for code in clock.wards:
            if code in wards:
                result.changes.extend(advance(wards[code], until, config))
    return result


# --- evaluation -----------------------------------------------------------------------------


def advance(ward: WardState, until_h: int, config: TensionConfig) -> list[LevelChange]:
    """Evaluate every window end after the last one evaluated, up to `until_h`, in order."""
    changes: list[LevelChange] = []
    if ward.evaluated_h is None:
        return changes
    for at_h in range(ward.evaluated_h + 1, until_h + 1):
        if ward.moves:
            apply_moves(ward, at_h, config)
        change = evaluate(ward, at_h, config)
        if change is not None:
            changes.append(change)
    if until_h > ward.evaluated_h:
        ward.evaluated_h = until_h
        prune(ward, until_h, config)
    return changes


def evaluate(ward: WardState, at_h: int, config: TensionConfig) -> LevelChange | None:
    """Score the windows that end at `at_h` and move the level, with hysteresis."""
    for window in config.windows:
        if at_h % window.step_h == 0:
            start_h = at_h - window.size_h
            observed = sum(_total(ward.buckets.get(h)) for h in range(start_h, at_h))
            ward.scores[window.name] = [observed, expected_milli(ward, at_h, window, config), start_h, at_h]
    if not ward.scores:
        return None
    window = max(config.windows, key=lambda w: _score(ward.scores.get(w.name)))
    observed, expected, start_h, end_h = ward.scores[window.name]
    score = observed / expected
    old = TensionLevel(ward.level)
    new, ward.below_since_h = next_level(old, ward.below_since_h, score, observed, at_h, config)
    if new is old:
        return None
    ward.level = new.value
    return LevelChange(
        ward=ward.ward, old=old, new=new, at_h=at_h, score=round(score, 4), observed_milli=observed,
        expected_milli=expected, window=window.label, start_h=start_h, end_h=end_h,
        contributors=top_contributors(ward, start_h, end_h, config, ids_from_h=at_h - config.ids_retention_h),
    )


def _score(entry: list[int] | None) -> float:
    return -1.0 if entry is None else entry[0] / entry[1]


def _total(bucket: dict | None) -> int:
    return 0 if not bucket else sum(cell[0] for cell in bucket.values())


def expected_milli(ward: WardState, at_h: int, window: Window, config: TensionConfig) -> int:
    """The ward's own expectation for a window: its learned daily rate, shrunk to the prior."""
    today = at_h // 24
    first = max(ward.since_day if ward.since_day is not None else today, today - config.baseline_days)
    days = max(0, today - first)
    learned = sum(ward.days.get(d, 0) for d in range(first, today))
    strength = config.baseline.prior.strength_days
    daily = (config.prior_daily_milli(ward.ward) * strength + learned) / (strength + days)
    daily = max(daily, config.baseline.min_expected_daily * 1000)
    return max(1, round(daily * window.size_h / 24))


def next_level(
    level: TensionLevel, below_since_h: int | None, score: float, observed_milli: int, at_h: int,
    config: TensionConfig,
) -> tuple[TensionLevel, int | None]:
    """Rise at once to the highest level whose `enter` the score reaches; drop only after the
    score stayed under the current level's `exit` for `cool_down`, then to the level the
    score supports (by `enter`), so a ward that calms down comes down once."""
    eligible = observed_milli >= config.min_observed * 1000
    target = TensionLevel.NORMAL
    if eligible:
        for candidate in LEVELS[1:]:
            if score >= config.threshold(candidate).enter:
                target = candidate
    if target.rank > level.rank:
        return target, None
    if level is TensionLevel.NORMAL:
        return level, None
    if eligible and score >= config.threshold(level).exit:
        return level, None
    below = at_h if below_since_h is None else below_since_h
    if (at_h - below) * HOUR < config.cool_down:
        return level, below
    return target, None  # straight to the level the score supports now: one step down, not a staircase


def top_contributors(
    ward: WardState, start_h: int, end_h: int, config: TensionConfig, *, ids_from_h: int
) -> tuple[Contribution, ...]:
    """The heaviest categories of a window, each with its most recent incident ids (from the
    buckets that still keep ids at any batching: those from `ids_from_h` on)."""
    sums: dict[str, list] = {}
    for h in range(start_h, end_h):
        for category, (milli, count, ids) in (ward.buckets.get(h) or {}).items():
            acc = sums.setdefault(category, [0, 0, []])
            acc[0] += milli
            acc[1] += count
            if h >= ids_from_h:
                acc[2].extend(ids)
    ranked = sorted((item for item in sums.items() if item[1][0] > 0), key=lambda kv: (-kv[1][0], kv[0]))
    out = []
    for category, (milli, count, ids) in ranked[: config.top_categories]:
        recent = sorted((e[0], e[1]) for e in ids)[-config.incident_ids :] if config.incident_ids else []
        out.append(Contribution(category, milli, count, tuple(iid for _, iid in recent)))
    return tuple(out)


def prune(ward: WardState, until_h: int, config: TensionConfig) -> None:
    oldest_h = until_h - config.retention_h
    for h in [h for h in ward.buckets if h < oldest_h]:
        del ward.buckets[h]
    # Older buckets keep their sums but drop their ids: the alert names the most recent ones.
    for h in range(oldest_h, until_h - config.ids_retention_h):
        for cell in (ward.buckets.get(h) or {}).values():
            cell[2] = []
    oldest_day = until_h // 24 - config.baseline_days - 1
    for d in [d for d in ward.days if d < oldest_day]:
        del ward.days[d]


# --- the published fact ----------------------------------------------------------------------


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * HOUR, tz=timezone.utc)


def to_event(change: LevelChange, ward_name: str, mode: str = LIVE) -> TensionLevelChanged:
    """The alert: deterministic id and times, so a replay publishes the very same event. An
    exercise or test alert carries its mode, and its id its mode too (never a live alert's id)."""
    at = _at(change.at_h)
    scope = ("tension",) if mode == LIVE else ("tension", mode)
    return TensionLevelChanged(
        event_id=derived_event_id(*scope, change.ward, at.isoformat(), change.old.value, change.new.value),
        occurred_at=at,
        recorded_at=at,
        mode=Mode(mode),
        source=Source(kind=SourceKind.SYSTEM, id="tension"),
        ward_code=change.ward,
        ward_name=ward_name,
        old_level=change.old,
        new_level=change.new,
        score=change.score,
        observed=change.observed_milli / 1000,
        expected=change.expected_milli / 1000,
        window=change.window,
        window_start=_at(change.start_h),
        window_end=_at(change.end_h),
        top_contributors=tuple(
            TensionContribution(
                category=c.category, weighted=c.weight_milli / 1000, count=min(c.count, 10_000),
                incident_ids=tuple(uuid.UUID(i) for i in c.incident_ids),
            )
            for c in change.contributors
        ),
    )
