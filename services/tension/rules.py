"""The tension rules, pure: no Kafka, no clock, no I/O.

Event time only. Every source partition (of the incidents topic, then of the calendar
topic) has a clock per mode: the newest `occurred_at` of the facts tension reads from it,
whichever ward they went to. The re-keying stage keeps it and stamps each fact with the
clock just before it (`stamp`). A fact older than its partition's clock minus the grace
period is late (metric only). A fact's *seen point* is the event time at which it became
visible in its partition: its own `occurred_at`, or the partition's clock when it came out
of order. Both depend only on the order inside each source partition, which Kafka fixes.

The watermark of a by-ward partition is the slowest clock among the source partitions that
still have records to read. The re-keying stage tells every by-ward partition, with every
batch, each source partition's clock (`idle_marker`; Flink's watermarks, broadcast to every
downstream channel), so a by-ward partition's watermark moves on with the whole stream,
not only with the reports of its own wards: a busy ward elsewhere does not hold a quiet
ward's alert back. A partition the re-keying stage has read to its end is *idle* and holds
nobody back (Flink's watermark idleness, decided on the log's end offset rather than on a
timer, so a replay of a written log never calls a partition idle before its end). When
every partition is idle, everything written has been read, and the watermark is the newest
clock.

Two kinds of evaluation, in one event-time order per ward (Beam's early and on-time panes):

- **early**, at the seen point m of every counted report (and calendar change): the open
  windows containing m, counting exactly the facts seen by m. It may only raise a level.
  Because the set seen by m is fixed by the log, early alerts do not depend on batching.
- **on time**, for the window ending at hour H once the watermark passes H + grace: every
  fact that can still count is in; it raises, and it lowers with hysteresis (`cool_down`),
  so a ward comes down once.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
import zlib
from typing import Any

from services.shared.events import (
    SENSITIVE_CATEGORIES,
    Classification,
    Mode,
    PlannedEventKind,
    PlannedEventRef,
    PlannedEventRole,
    Source,
    SourceKind,
    TensionContribution,
    TensionLevel,
    TensionLevelChanged,
    derived_event_id,
)
from services.tension.config import HOUR, TensionConfig, Window
from services.tension.state import (
    ANSWER,
    CALENDAR,
    IDLE,
    LIVE,
    REPORT,
    UPDATE,
    WITHDRAW,
    ClockState,
    Indicator,
    WardState,
)

LEVELS = tuple(TensionLevel)
SCORED = (TensionLevel.ELEVATED, TensionLevel.HIGH, TensionLevel.CRITICAL)
WITHDRAWN_STATUSES = frozenset({"unfounded", "false_alarm"})
GRADINGS = ("evidenced", "experienced", "potential")
KEEP_CALENDAR_H = 24 * 8  # hours a finished planned event or an expired silence is kept


class Outcome(Enum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"
    LATE = "late"
    MOVED = "moved"  # an update changed a counted report's category, grading or ward
    WITHDRAWN = "withdrawn"  # a linked duplicate, or unfounded / false alarm
    UNMATCHED = "unmatched"  # about no report counted here (another partition, late, too old)
    CALENDAR = "calendar"
    MARKER = "marker"


@dataclass(frozen=True, slots=True)
class Contribution:
    category: str
    weight_milli: int
    count: int
    incident_ids: tuple[str, ...]
    gradings: tuple[int, int, int] = (0, 0, 0)  # evidenced, experienced, potential


@dataclass(frozen=True, slots=True)
class PlannedRef:
    planned_event_id: str
    name: str
    kind: str
    role: str
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class LevelChange:
    ward: str
    old: TensionLevel
    new: TensionLevel
    at: int  # event time of the change, seconds (an hour for an on-time change)
    score: float
    observed_milli: int
    expected_milli: int
    window: str
    start_h: int
    end_h: int
    contributors: tuple[Contribution, ...]
    planned: tuple[PlannedRef, ...] = ()
    early: bool = False
    sensitive: bool = False

    @property
    def at_h(self) -> int:
        return self.at // HOUR


@dataclass(slots=True)
class Processed:
    changes: list[LevelChange]
    counted: int = 0
    duplicates: int = 0
    late: int = 0
    moved: int = 0
    withdrawn: int = 0
    outbox: dict[int, list[Indicator]] = field(default_factory=lambda: defaultdict(list))


# --- from a fact to an indicator --------------------------------------------------------------


def ward_partition(ward: str, partitions: int) -> int:
    """The by-ward partition that owns a ward: a stable hash, the same in every process."""
    return zlib.crc32(ward.encode()) % partitions


def _ts(value: datetime) -> int:
    return int(value.timestamp())


def indicator(event: Any, partition: int, partitions: int, config: TensionConfig | None = None) -> Indicator | None:
    """What a fact contributes, or None. Exercise and test facts carry their mode: they are
    scored apart and never drive live alerts. An OFFICIAL-SENSITIVE category not opted in is
    not scored at all: its report never reaches the scorer, an update to it withdraws."""
    kind = event.event_type
    mode = event.mode.value
    at = _ts(event.occurred_at)
    sensitive = str(getattr(event, "classification", "OFFICIAL")) == Classification.OFFICIAL_SENSITIVE.value

    def unscored(category: str) -> bool:
        return config is not None and _sensitive_category(category) and not config.scored(category)

    if kind == "IncidentReported":
        category = event.category.value
        if unscored(category):
            return None
        grading = event.police_grading.value if event.police_grading else None
        return Indicator(str(event.incident_id), event.location.ward_code, category, grading, at, partition,
                         partitions, REPORT, mode, sensitive)
    if kind == "IncidentUpdated":
        category = event.category.value if event.category else None
        grading = event.police_grading.value if event.police_grading else None
        ward = event.location.ward_code if event.location is not None else None
        if category is not None and unscored(category):
            return Indicator(str(event.incident_id), None, None, None, at, partition, partitions, WITHDRAW, mode)
        if category is None and grading is None and ward is None:
            return None
        return Indicator(str(event.incident_id), ward, category, grading, at, partition, partitions, UPDATE, mode,
                         sensitive)
    if kind == "IncidentLinked" or (kind == "IncidentStatusChanged" and event.status.value in WITHDRAWN_STATUSES):
        return Indicator(str(event.incident_id), None, None, None, at, partition, partitions, WITHDRAW, mode)
    if kind == "PlannedEventRegistered":
        extra = {"t": "plan", "name": event.name, "kind": event.kind.value, "wards": list(event.wards),
                 "start": _ts(event.starts_at), "end": _ts(event.ends_at), "contentious": event.contentious,
                 "uplift": {str(c): n for c, n in event.expected_uplift.items()}, "sens": int(sensitive)}
        return Indicator(str(event.planned_event_id), None, None, None, at, partition, partitions, CALENDAR, mode,
                         sensitive, extra)
    if kind == "PlannedEventCancelled":
        return Indicator(str(event.planned_event_id), None, None, None, at, partition, partitions, CALENDAR, mode,
                         sensitive, {"t": "cancel"})
    if kind == "TensionSilenced":
        extra = {"t": "silence", "ward": event.ward_code, "category": event.category.value,
                 "until": _ts(event.until)}
        return Indicator(str(event.silence_id), None, None, None, at, partition, partitions, CALENDAR, mode,
                         sensitive, extra)
    return None


def _sensitive_category(category: str) -> bool:
    return category in _SENSITIVE


_SENSITIVE = frozenset(c.value for c in SENSITIVE_CATEGORIES)


def idle_marker(idle: dict[int, bool], sources: int, mode: str = LIVE,
                clocks: dict[tuple[int, str], int] | None = None) -> Indicator:
    """The re-keying stage's word on which source partitions it has read to their end and,
    with `clocks` ((source partition, mode) -> clock), how far each one's clock has come."""
    extra: dict = {"idle": {str(p): v for p, v in idle.items()}}
    if clocks:
        by_mode: dict[str, dict[str, int]] = {}
        for (source, fact_mode), at in clocks.items():
            by_mode.setdefault(fact_mode, {})[str(source)] = at
        extra["clocks"] = by_mode
    return Indicator("", None, None, None, 0, -1, sources, IDLE, mode, False, extra)


def stamp(ind: Indicator, clocks: dict[tuple[int, str], int]) -> int | None:
    """The fact's source partition's clock just before it (its stamp: `Indicator.clock`), the
    clock moved on: the re-keying stage's, called for every fact in each source partition's order."""
    key = (ind.source, ind.mode)
    before = clocks.get(key)
    if before is None or ind.at > before:
        clocks[key] = ind.at
    return before


# --- clocks, lateness, the watermark ---------------------------------------------------------


def observe(clock: ClockState, ind: Indicator, config: TensionConfig) -> tuple[bool, int]:
    """Move the source partition's clock; (late, seen point). The fact's stamp is its source
    partition's clock just before it; this partition's own view (its facts and the markers'
    clocks) is never ahead of it, and stands in when the fact has none."""
    before = clock.clocks.get(ind.source)
    if ind.clock is not None and (before is None or ind.clock > before):
        before = clock.clocks[ind.source] = ind.clock
    clock.sources = max(clock.sources, ind.sources)
    if before is None or ind.at > before:
        clock.clocks[ind.source] = ind.at
    if before is None:
        return False, ind.at
    return ind.at < before - config.grace, max(ind.at, before)


def frontier(clock: ClockState) -> tuple[int, bool] | None:
    """(limit, inclusive): every point before the limit (or at it, when inclusive) can be
    evaluated, because every fact seen by then has arrived. None until every source
    partition with records still to read has been seen."""
    if clock.sources == 0:
        return None
    active = [p for p in range(clock.sources) if not clock.idle.get(p)]
    if not active:
        if not clock.clocks:
            return None
        limit, inclusive = max(clock.clocks.values()), True
    elif any(p not in clock.clocks for p in active):
        return None
    else:
        limit, inclusive = min(clock.clocks[p] for p in active), False
    if clock.holds:  # a report moving in from another partition: wait for its details
        held = min(h[0] for h in clock.holds.values())
        if held < limit or (inclusive and held == limit):
            limit, inclusive = held, False
    return limit, inclusive


def _due(point: int, front: tuple[int, bool]) -> bool:
    limit, inclusive = front
    return point < limit or (inclusive and point <= limit)


def watermark(clock: ClockState) -> int | None:
    front = frontier(clock)
    return None if front is None else front[0]


def closed_until(clock: ClockState, config: TensionConfig) -> int | None:
    """The last window end (hour) evaluated on time at the current watermark."""
    front = frontier(clock)
    if front is None:
        return None
    limit, inclusive = front
    return int((limit - config.grace - (0 if inclusive else 1)) // HOUR)


# --- counting ----------------------------------------------------------------------------


def _ward(wards: dict[str, WardState], clock: ClockState, code: str, at: int) -> WardState:
    ward = wards.get(code)
    if ward is None:
        ward = wards[code] = WardState(ward=code)
    if code not in clock.wards:
        clock.wards.append(code)
    _begin(ward, clock, at)
    return ward


def _begin(ward: WardState, clock: ClockState, point: int) -> None:
    """A ward's history (its baseline's first day, its first on-time window) starts at the
    earliest seen point of its facts, not at the first fact to arrive: which arrives first
    depends on how the source partitions interleave (they are read at their own pace), the
    earliest seen point does not. A fact arriving after an evaluation of its partition has a
    seen point at or past it (the watermark), so the start never moves once evaluated from;
    `clock.done` guards the one exception, a partition woken from idleness."""
    hour = point // HOUR
    if ward.evaluated_h is None:
        ward.since_day, ward.evaluated_h = hour // 24, hour
    elif hour < ward.evaluated_h and (clock.done is None or point > clock.done):
        ward.evaluated_h = hour
        ward.since_day = hour // 24 if ward.since_day is None else min(ward.since_day, hour // 24)


def _point(ward: WardState, clock: ClockState, point: int) -> None:
    i = bisect.bisect_left(ward.points, point)
    if i == len(ward.points) or ward.points[i] != point:
        ward.points.insert(i, point)


def accept(clock: ClockState, ward: WardState, ind: Indicator, config: TensionConfig,
           seen: tuple[bool, int] | None = None) -> Outcome:
    """Count one report in its ward's bucket unless it is late or already counted."""
    late, point = seen if seen is not None else observe(clock, ind, config)
    hour = ind.at // HOUR
    if ind.ward not in clock.wards:
        clock.wards.append(ind.ward)
    bucket = ward.buckets.get(hour)
    if bucket is not None and _holds(bucket, ind.incident_id):
        return Outcome.DUPLICATE
    if late:
        return Outcome.LATE
    _begin(ward, clock, point)
    _add(ward, hour, ind.category, (ind.at, ind.incident_id, ind.grading, point, int(ind.sensitive)), config)
    _point(ward, clock, point)
    return Outcome.COUNTED


def _add(ward: WardState, hour: int, category: str, entry: tuple, config: TensionConfig) -> None:
    weight = config.weight_of(category, entry[2])
    bucket = ward.buckets.get(hour)
    if bucket is None:
        bucket = ward.buckets[hour] = {}
    cell = bucket.get(category)
    if cell is None:
        cell = bucket[category] = [0, 0, [], [0, 0, 0]]
    cell[0] += weight
    cell[1] += 1
    cell[2].append(entry)
    if entry[2] in GRADINGS:
        cell[3][GRADINGS.index(entry[2])] += 1
        if entry[2] == "potential" and weight > 0:
            ward.potential.append((entry[0], entry[1], entry[3], category))
    ward.days[hour // 24] = ward.days.get(hour // 24, 0) + weight


def _remove(ward: WardState, hour: int, category: str, incident_id: str, config: TensionConfig) -> list | None:
    bucket = ward.buckets.get(hour) or {}
    cell = bucket.get(category)
    index = next((i for i, e in enumerate(cell[2]) if e[1] == incident_id), None) if cell else None
    if index is None:
        return None
    entry = cell[2].pop(index)
    weight = config.weight_of(category, entry[2])
    cell[0] -= weight
    cell[1] -= 1
    if entry[2] in GRADINGS:
        cell[3][GRADINGS.index(entry[2])] -= 1
        if entry[2] == "potential":
            ward.potential = [p for p in ward.potential if p[1] != incident_id]
    if cell[1] == 0:
        del bucket[category]
    ward.days[hour // 24] = ward.days.get(hour // 24, 0) - weight
    return entry


def _holds(bucket: dict, incident_id: str) -> bool:
    return any(incident_id == entry[1] for cell in bucket.values() for entry in cell[2])


# --- corrections: recategorised, regraded, moved to another ward, withdrawn -----------------
#
# Deterministic like a report: a correction older than its partition's clock minus the grace
# is late. Otherwise no window ending after the correction's hour U has been evaluated on time
# yet, in any interleaving, so the correction waits (in the ward's state) and is applied just
# before the window ending at U + 1 is evaluated: windows up to U keep what they had, every
# later window, and every early evaluation from the correction's seen point on, has the new.


GONE = "gone"


def find_report(ward: WardState, incident_id: str, at_h: int, within_h: int) -> tuple | str | None:
    """(report hour, occurred_at, category, grading, sensitive, seen) of a counted report,
    pending corrections applied; GONE when withdrawn or moved away."""
    found: tuple | str | None = None
    for h in range(at_h - within_h, at_h + within_h + 1):
        for category, cell in (ward.buckets.get(h) or {}).items():
            for entry in cell[2]:
                if entry[1] == incident_id:
                    found = (h, entry[0], category, entry[2], entry[4], entry[3])
    for move in ward.moves:
        if move[3] == incident_id:
            found = GONE if move[6] is None else (move[1], move[2], move[6], move[7], move[9], move[8])
    return found


def _holder(clock: ClockState, wards: dict[str, WardState], ind: Indicator, config: TensionConfig):
    gone = False
    for code in clock.wards:
        ward = wards.get(code)
        found = None if ward is None else find_report(ward, ind.incident_id, ind.at // HOUR, config.update_within_h)
        if found == GONE:
            gone = True
        elif found is not None:
            return ward, found
    return None, GONE if gone else None


def _after_h(ward: WardState, incident_id: str, at_h: int) -> int:
    return max([at_h, *(m[0] for m in ward.moves if m[3] == incident_id)])  # keep their order


def correct(clock: ClockState, wards: dict[str, WardState], ind: Indicator, config: TensionConfig,
            here: int | None, partitions: int, result: Processed) -> Outcome:
    late, point = observe(clock, ind, config)
    if late:
        return Outcome.LATE
    at_h = ind.at // HOUR
    ward, found = _holder(clock, wards, ind, config)
    dest = ind.ward if ind.kind == UPDATE else None
    dest_part = ward_partition(dest, partitions) if dest is not None and here is not None else here
    key = f"{ind.incident_id}|{ind.at}"
    if ward is None:
        if dest is not None and dest_part != here:
            result.outbox[dest_part].append(_answer(ind, key, here, None))
        elif dest is not None and partitions > 1:
            _hold(clock, key, point, partitions - 1, wards, config)
        return Outcome.DUPLICATE if found == GONE else Outcome.UNMATCHED
    report_h, at, category, grading, sens, seen = found
    after = _after_h(ward, ind.incident_id, at_h)
    if ind.kind == WITHDRAW:
        ward.moves.append([after, report_h, at, ind.incident_id, category, grading, None, None, point, sens])
        return Outcome.WITHDRAWN
    new = (ind.category or category, ind.grading or grading)
    sens = 1 if (sens or ind.sensitive) else 0
    if dest is None or dest == ward.ward:
        if new == (category, grading):
            return Outcome.DUPLICATE
        ward.moves.append([after, report_h, at, ind.incident_id, category, grading, *new, point, sens])
        return Outcome.MOVED
    ward.moves.append([after, report_h, at, ind.incident_id, category, grading, None, None, point, sens])
    details = {"report_h": report_h, "report_at": at, "category": new[0], "grading": new[1], "sens": sens}
    if dest_part == here or here is None:
        _move_in(clock, wards, dest, ind.incident_id, at_h, point, details, config)
    else:
        result.outbox[dest_part].append(_answer(ind, key, here, details))
    return Outcome.MOVED


def _answer(ind: Indicator, key: str, here: int | None, details: dict | None) -> Indicator:
    return Indicator(ind.incident_id, ind.ward, None, None, ind.at, -1, ind.sources, ANSWER, ind.mode, False,
                     {"key": key, "from": here, "details": details})


def _move_in(clock: ClockState, wards: dict[str, WardState], code: str, incident_id: str, at_h: int, point: int,
             details: dict, config: TensionConfig) -> None:
    ward = _ward(wards, clock, code, point)
    if find_report(ward, incident_id, details["report_h"], 0) not in (None, GONE):
        return  # already moved in (a correction seen twice)
    ward.moves.append([_after_h(ward, incident_id, at_h), details["report_h"], details["report_at"], incident_id,
                       None, None, details["category"], details["grading"], point, details["sens"]])
    _point(ward, clock, point)


def _hold(clock: ClockState, key: str, point: int, awaited: int, wards: dict[str, WardState],
          config: TensionConfig) -> None:
    if key in clock.holds:
        return
    clock.holds[key] = [point, awaited, None]
    for answer in clock.answers.pop(key, []):
        _answered(clock, key, answer, wards, config)


def answer(clock: ClockState, wards: dict[str, WardState], ind: Indicator, config: TensionConfig) -> None:
    key = ind.extra["key"]
    if key not in clock.holds:  # came before its update, or for a move this partition applied itself
        clock.answers.setdefault(key, []).append([ind.extra.get("details"), ind.incident_id, ind.ward, ind.at])
        return
    _answered(clock, key, [ind.extra.get("details"), ind.incident_id, ind.ward, ind.at], wards, config)


def _answered(clock: ClockState, key: str, answer_row: list, wards: dict[str, WardState], config: TensionConfig) -> None:
    hold = clock.holds[key]
    details, incident_id, dest, at = answer_row
    hold[1] -= 1
    if details is not None:
        hold[2] = details
    if hold[1] <= 0:
        del clock.holds[key]
        if hold[2] is not None and dest is not None:
            _move_in(clock, wards, dest, incident_id, at // HOUR, hold[0], hold[2], config)


def apply_moves(ward: WardState, at_h: int, config: TensionConfig) -> None:
    """Apply, in arrival order, the corrections that take effect before the window ending at `at_h`."""
    pending = []
    for move in ward.moves:
        if move[0] >= at_h:
            pending.append(move)
            continue
        _, report_h, at, incident_id, old_category, old_grading, new_category, new_grading, point, sens = move
        entry = None
        if old_category is not None:
            entry = _remove(ward, report_h, old_category, incident_id, config)
            if entry is None:
                continue
        if new_category is not None:
            seen = max(point, entry[3]) if entry is not None else point
            _add(ward, report_h, new_category, (at, incident_id, new_grading, seen, sens), config)
    ward.moves = pending


# --- the calendar: planned events and silences --------------------------------------------


def calendar(clock: ClockState, wards: dict[str, WardState], ind: Indicator, config: TensionConfig,
             mine) -> None:
    _, point = observe(clock, ind, config)
    extra = ind.extra or {}
    touched: set[str] = set()
    ahead = int(config.planned_events.contentious_watch_ahead)
    if extra.get("t") == "silence":
        clock.silences[ind.incident_id] = [point, extra["ward"], extra["category"], ind.at, extra["until"]]
        if mine(extra["ward"]):
            ward = _ward(wards, clock, extra["ward"], point)
            _point(ward, clock, max(point, extra["until"]))  # a rise it held back may fire when it ends
        return
    versions = clock.planned.setdefault(ind.incident_id, [])
    previous = versions[-1][1] if versions else None
    data = None if extra.get("t") == "cancel" else {k: v for k, v in extra.items() if k != "t"}
    if previous is None and data is None:
        return
    versions.append([point, data])
    for plan in (previous, data):
        if plan is None:
            continue
        for code in plan["wards"]:
            if mine(code):
                touched.add(code)
                ward = _ward(wards, clock, code, point)
                _point(ward, clock, point)
                if plan is data and plan["contentious"] and plan["start"] - ahead > point:
                    _point(ward, clock, plan["start"] - ahead)


def _plans(clock: ClockState, code: str, point: int) -> list[tuple[str, dict]]:
    """The planned events concerning a ward as known at `point` (not cancelled)."""
    out = []
    for pid, versions in clock.planned.items():
        data = None
        for seen, version in versions:
            if seen > point:
                break
            data = version
        if data is not None and code in data["wards"]:
            out.append((pid, data))
    return out


def _silenced(clock: ClockState, code: str, t: int, point: int) -> frozenset[str]:
    if not clock.silences:
        return frozenset()
    return frozenset(s[2] for s in clock.silences.values() if s[1] == code and s[0] <= point and s[3] <= t < s[4])


def _uplift(plans: list[tuple[str, dict]], start_h: int, end_h: int, silenced: frozenset[str],
            config: TensionConfig) -> tuple[int, list[tuple[str, dict]]]:
    """Expected extra weight from the planned events overlapping a window (each in full)."""
    total, explaining = 0, []
    for pid, data in plans:
        if data["start"] < end_h * HOUR and data["end"] > start_h * HOUR:
            extra = sum(round(n * config.weight_milli.get(c, 0)) for c, n in data["uplift"].items() if c not in silenced)
            if extra > 0:
                total += extra
                explaining.append((pid, data))
    return total, explaining


def _contentious(plans: list[tuple[str, dict]], t: int, config: TensionConfig) -> list[tuple[str, dict]]:
    ahead = config.planned_events.contentious_watch_ahead
    return [(pid, d) for pid, d in plans if d["contentious"] and d["start"] - ahead <= t < d["end"]]


# --- one batch ----------------------------------------------------------------------------


def process(
    clock: ClockState, wards: dict[str, WardState], indicators: list[Indicator], config: TensionConfig,
    *, partition: int | None = None, partitions: int = 1, mode: str = LIVE,
) -> Processed:
    """One batch of one by-ward partition in one mode: take in every fact, then evaluate,
    ward by ward and in event-time order, every early point and every window end the
    watermark allows. `wards` gains a state for each new ward; `outbox` holds rows for other
    partitions."""
    result = Processed(changes=[])

    def mine(code: str) -> bool:
        return partition is None or ward_partition(code, partitions) == partition

    for ind in indicators:
        if ind.kind == REPORT:
            seen = observe(clock, ind, config)
            ward = wards.get(ind.ward)
            if ward is None:
                ward = wards[ind.ward] = WardState(ward=ind.ward)
            outcome = accept(clock, ward, ind, config, seen)
        elif ind.kind in (UPDATE, WITHDRAW):
            outcome = correct(clock, wards, ind, config, partition, partitions, result)
        elif ind.kind == CALENDAR:
            calendar(clock, wards, ind, config, mine)
            outcome = Outcome.CALENDAR
        elif ind.kind == IDLE:
            clock.sources = max(clock.sources, ind.sources)
            extra = ind.extra or {}
            clock.idle.update({int(p): bool(v) for p, v in extra.get("idle", {}).items()})
            for p, at in extra.get("clocks", {}).get(mode, {}).items():  # the source's watermark
                if at > clock.clocks.get(int(p), at - 1):
                    clock.clocks[int(p)] = at
            outcome = Outcome.MARKER
        else:
            answer(clock, wards, ind, config)
            outcome = Outcome.MARKER
        if outcome is Outcome.COUNTED:
            result.counted += 1
        elif outcome is Outcome.LATE:
            result.late += 1
        elif outcome is Outcome.MOVED:
            result.moved += 1
        elif outcome is Outcome.WITHDRAWN:
            result.withdrawn += 1
        elif outcome is Outcome.DUPLICATE:
            result.duplicates += 1
    front = frontier(clock)
    if front is not None:
        for code in clock.wards:
            if code in wards:
                result.changes.extend(advance(wards[code], clock, front, config))
        limit, inclusive = front
        clock.done = limit if inclusive else limit - 1
        _prune_calendar(clock, limit)
    return result


def advance(ward: WardState, clock: ClockState, front: tuple[int, bool], config: TensionConfig) -> list[LevelChange]:
    """Every early point and window end due, in event-time order (a window end's point is
    its end plus the grace; at a tie the window end goes first)."""
    changes: list[LevelChange] = []
    if ward.evaluated_h is None:
        return changes
    grace = int(config.grace)
    cache: dict = {}
    evaluated_h = ward.evaluated_h
    while True:
        on_time = (ward.evaluated_h + 1) * HOUR + grace
        early = ward.points[0] if ward.points else None
        if early is not None and early < on_time:
            if not _due(early, front):
                break
            ward.points.pop(0)
            change = evaluate_early(ward, clock, early, config, cache)
        else:
            if not _due(on_time, front):
                break
            at_h = ward.evaluated_h + 1
            if ward.moves:
                apply_moves(ward, at_h, config)
                cache.clear()
            change = evaluate(ward, clock, at_h, config)
            ward.evaluated_h = at_h
            if at_h % 24 == 0:
                prune(ward, at_h, config)
                cache.clear()
        if change is not None:
            changes.append(change)
    if ward.evaluated_h != evaluated_h:
        prune(ward, ward.evaluated_h, config)
    return changes


# --- evaluation ---------------------------------------------------------------------------


def _window_end(window: Window, m: int) -> int:
    """The end (hour) of the open window of this kind that contains the point m."""
    return (m // HOUR // window.step_h + 1) * window.step_h


def evaluate(ward: WardState, clock: ClockState, at_h: int, config: TensionConfig) -> LevelChange | None:
    """On time: score the windows that end at `at_h` (every fact in) and move the level, with hysteresis."""
    t = at_h * HOUR
    point = t + int(config.grace)
    silenced = _silenced(clock, ward.ward, t, point)
    plans = _plans(clock, ward.ward, point) if clock.planned else []
    for window in config.windows:
        if at_h % window.step_h == 0:
            start_h = at_h - window.size_h
            observed = _range_total(ward, start_h, at_h, silenced)
            expected = expected_milli(ward, at_h, window, config)
            if plans:
                expected += _uplift(plans, start_h, at_h, silenced, config)[0]
            ward.scores[window.name] = [observed, expected, start_h, at_h]
    if not ward.scores:
        return None
    window = max(config.windows, key=lambda w: _score(ward.scores.get(w.name)))
    observed, expected, start_h, end_h = ward.scores[window.name]
    score = observed / expected
    contentious = _contentious(plans, t, config) if plans else []
    watch = bool(contentious) or _potential(ward, t, None, config, silenced) >= config.watch.min_potential
    old = TensionLevel(ward.level)
    new, ward.below_since_h = next_level(old, ward.below_since_h, score, observed, at_h, config, watch=watch)
    if ward.spec is not None and at_h >= ward.spec[1]:
        # The window an early rise was fired in has closed: the on-time evaluation, with every
        # fact and correction in, supersedes it. Not supported (a duplicate linked, a report
        # withdrawn or moved after it fired): taken back at once, one step down.
        if new is old and old.value == ward.spec[0]:
            target = _supported(score, observed, watch, config)
            if target.rank < old.rank:
                new, ward.below_since_h = target, None
        ward.spec = None
    if new is old:
        return None
    ward.level = new.value
    return _change(ward, old, new, t, score, observed, expected, window, start_h, end_h, None, plans, contentious,
                   silenced, config)


def evaluate_early(ward: WardState, clock: ClockState, m: int, config: TensionConfig, cache: dict) -> LevelChange | None:
    """Early: the open windows containing the point m, with exactly the facts seen by m. Raises only."""
    old = TensionLevel(ward.level)
    if old is TensionLevel.CRITICAL:
        return None
    silenced = _silenced(clock, ward.ward, m, m)
    plans = _plans(clock, ward.ward, m) if clock.planned else []
    contentious = _contentious(plans, m, config) if plans else []
    watch_possible = old is TensionLevel.NORMAL and (contentious or ward.potential)
    lowest = next((lv for lv in SCORED if lv.rank > old.rank), None)
    frames = []
    for window in config.windows:
        end_h = _window_end(window, m)
        start_h = end_h - window.size_h
        expected = expected_milli(ward, end_h, window, config)
        if plans:
            expected += _uplift(plans, start_h, end_h, silenced, config)[0]
        frames.append((window, start_h, end_h, expected))
    if not watch_possible:  # cheap bound: everything here now, seen or not, cannot raise the level
        bound = max(_upper(ward, s, e, m, silenced, cache, config) / x for _, s, e, x in frames)
        if lowest is None or bound < config.threshold(lowest).enter:
            return None
    best = None
    for window, start_h, end_h, expected in frames:
        observed = _early_observed(ward, start_h, end_h, m, config, silenced, cache)
        score = observed / expected
        if best is None or score > best[0]:
            best = (score, observed, expected, window, start_h, end_h)
    score, observed, expected, window, start_h, end_h = best
    target = TensionLevel.NORMAL
    if observed >= config.min_observed * 1000:
        for candidate in SCORED:
            if score >= config.threshold(candidate).enter:
                target = candidate
    if target is TensionLevel.NORMAL and (contentious or _potential(ward, m, m, config, silenced) >= config.watch.min_potential):
        target = TensionLevel.WATCH
    if target.rank <= old.rank:
        return None
    ward.level, ward.below_since_h = target.value, None
    ward.spec = [target.value, end_h]
    return _change(ward, old, target, m, score, observed, expected, window, start_h, end_h, m, plans, contentious,
                   silenced, config)


def _upper(ward: WardState, start_h: int, end_h: int, m: int, silenced: frozenset[str], cache: dict,
           config: TensionConfig) -> int:
    """Every fact in a window now, seen by m or not, plus the corrections that add weight."""
    last_h = min(end_h, m // HOUR + 1)
    key = ("upper", start_h, last_h, silenced)
    total = cache.get(key)
    if total is None:
        total = cache[key] = _range_total(ward, start_h, last_h, silenced)
    for move in ward.moves:
        if move[6] is not None and start_h <= move[1] < last_h:
            total += config.weight_of(move[6], move[7])
    return total


def _early_observed(ward: WardState, start_h: int, end_h: int, m: int, config: TensionConfig,
                    silenced: frozenset[str], cache: dict) -> int:
    """The weight of a window as seen by the point m: the buckets, less the reports not seen
    yet, plus the corrections seen by m and not applied yet."""
    last_h = min(end_h, m // HOUR + 1)
    recent_h = max(start_h, min(last_h, int((m - config.grace) // HOUR) - 1))
    key = (start_h, recent_h, silenced)
    base = cache.get(key)
    if base is None:
        base = cache[key] = _range_total(ward, start_h, recent_h, silenced)
    total = base
    for h in range(recent_h, last_h):
        for category, cell in (ward.buckets.get(h) or {}).items():
            if category in silenced:
                continue
            if all(e[3] <= m for e in cell[2]):
                total += cell[0]
            else:
                total += sum(config.weight_of(category, e[2]) for e in cell[2] if e[3] <= m)
    for move in ward.moves:
        if move[8] <= m and start_h <= move[1] < last_h:
            old = config.weight_of(move[4], move[5]) if move[4] is not None and move[4] not in silenced else 0
            new = config.weight_of(move[6], move[7]) if move[6] is not None and move[6] not in silenced else 0
            total += new - old
    return max(0, total)


def _potential(ward: WardState, t: int, m: int | None, config: TensionConfig, silenced: frozenset[str]) -> int:
    """Reports graded potential within `watch.potential_within` before t (seen by m, when early)."""
    if not ward.potential and not ward.moves:
        return 0
    since = t - config.watch.potential_within
    end = t + 1 if m is not None else t
    n = sum(1 for at, _, seen, category in ward.potential
            if since <= at < end and (m is None or seen <= m) and category not in silenced)
    for move in ward.moves:  # corrections seen by then, not applied yet
        if since <= move[2] < end and (m is None or move[8] <= m):
            was = move[4] is not None and move[5] == "potential" and move[4] not in silenced
            now = move[6] is not None and move[7] == "potential" and move[6] not in silenced
            n += int(now) - int(was)
    return n


def _change(ward: WardState, old: TensionLevel, new: TensionLevel, at: int, score: float, observed: int,
            expected: int, window: Window, start_h: int, end_h: int, m: int | None, plans: list, contentious: list,
            silenced: frozenset[str], config: TensionConfig) -> LevelChange:
    ids_from_h = at // HOUR - config.ids_retention_h  # kept at any batching (prune follows the evaluations)
    contributors, sensitive = top_contributors(ward, start_h, end_h, config, ids_from_h=ids_from_h, seen_by=m,
                                               silenced=silenced)
    explaining = _uplift(plans, start_h, end_h, silenced, config)[1] if plans else []
    refs = [PlannedRef(pid, d["name"], d["kind"], PlannedEventRole.EXPLAINS.value, bool(d.get("sens")))
            for pid, d in explaining]
    refs += [PlannedRef(pid, d["name"], d["kind"], PlannedEventRole.RAISED.value, bool(d.get("sens")))
             for pid, d in contentious]
    sensitive = sensitive or any(r.sensitive for r in refs)
    return LevelChange(
        ward=ward.ward, old=old, new=new, at=at, score=round(score, 4), observed_milli=observed,
        expected_milli=expected, window=window.label, start_h=start_h, end_h=end_h, contributors=contributors,
        planned=tuple(sorted(refs, key=lambda r: (r.role, r.planned_event_id))), early=m is not None,
        sensitive=sensitive,
    )


def _range_total(ward: WardState, start_h: int, end_h: int, silenced: frozenset[str] = frozenset()) -> int:
    """The weight of the hours [start_h, end_h): whole days from the daily totals, the rest by bucket."""
    if silenced:
        return sum(c[0] for h in range(start_h, end_h) for k, c in (ward.buckets.get(h) or {}).items()
                   if k not in silenced)
    buckets, total = ward.buckets, 0
    h = start_h
    while h < end_h:
        if h % 24 == 0 and h + 24 <= end_h:
            total += ward.days.get(h // 24, 0)
            h += 24
        else:
            bucket = buckets.get(h)
            if bucket:
                total += sum(cell[0] for cell in bucket.values())
            h += 1
    return total


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


def _supported(score: float, observed_milli: int, watch: bool, config: TensionConfig) -> TensionLevel:
    """The highest level a score reaches by `enter` (watch when only that holds)."""
    target = TensionLevel.NORMAL
    if observed_milli >= config.min_observed * 1000:
        for candidate in SCORED:
            if score >= config.threshold(candidate).enter:
                target = candidate
    return TensionLevel.WATCH if target is TensionLevel.NORMAL and watch else target


def next_level(
    level: TensionLevel, below_since_h: int | None, score: float, observed_milli: int, at_h: int,
    config: TensionConfig, *, watch: bool = False,
) -> tuple[TensionLevel, int | None]:
    """Rise at once to the highest level whose `enter` the score reaches (watch: potential
    tension or a contentious event ahead); drop only after the level stayed unsupported for
    `cool_down`, then to the level supported now, so a ward that calms down comes down once."""
    eligible = observed_milli >= config.min_observed * 1000
    target = TensionLevel.NORMAL
    if eligible:
        for candidate in SCORED:
            if score >= config.threshold(candidate).enter:
                target = candidate
    if target is TensionLevel.NORMAL and watch:
        target = TensionLevel.WATCH
    if target.rank > level.rank:
        return target, None
    if level is TensionLevel.NORMAL:
        return level, None
    if level is TensionLevel.WATCH:
        supported = watch
    else:
        supported = eligible and score >= config.threshold(level).exit
    if supported:
        return level, None
    below = at_h if below_since_h is None else below_since_h
    if (at_h - below) * HOUR < config.cool_down:
        return level, below
    return target, None  # straight to the level the score supports now: one step down, not a staircase


def top_contributors(
    ward: WardState, start_h: int, end_h: int, config: TensionConfig, *, ids_from_h: int, seen_by: int | None = None,
    silenced: frozenset[str] = frozenset(),
) -> tuple[tuple[Contribution, ...], bool]:
    """The heaviest categories of a window, each with its most recent incident ids (from the
    buckets that still keep ids at any batching: those from `ids_from_h` on), and whether any
    weight in it is of an OFFICIAL-SENSITIVE category. Early (`seen_by`): as seen by then."""
    sums: dict[str, list] = {}
    last_h = end_h if seen_by is None else min(end_h, seen_by // HOUR + 1)
    recent_h = last_h if seen_by is None else max(start_h, int((seen_by - config.grace) // HOUR) - 1)
    pending = {}
    if seen_by is not None:
        for move in ward.moves:
            if move[8] <= seen_by and start_h <= move[1] < last_h:
                pending[move[3]] = move
    for h in range(start_h, last_h):
        for category, (milli, count, entries, gradings) in (ward.buckets.get(h) or {}).items():
            if category in silenced:
                continue
            acc = sums.setdefault(category, [0, 0, [], [0, 0, 0]])
            if h >= recent_h or any(e[1] in pending for e in entries):
                for e in entries:
                    if (seen_by is not None and e[3] > seen_by) or e[1] in pending:
                        continue
                    _count(acc, category, e, config, h >= ids_from_h)
                if h < recent_h:  # old bucket: entries dropped by pruning still weigh
                    acc[0] += milli - sum(config.weight_of(category, e[2]) for e in entries)
                    acc[1] += count - len(entries)
            else:
                acc[0] += milli
                acc[1] += count
                acc[3] = [a + b for a, b in zip(acc[3], gradings)]
                if h >= ids_from_h:
                    acc[2].extend(e for e in entries)
    for move in pending.values():
        if move[6] is not None and move[6] not in silenced:
            acc = sums.setdefault(move[6], [0, 0, [], [0, 0, 0]])
            _count(acc, move[6], [move[2], move[3], move[7], move[8], move[9]], config, move[1] >= ids_from_h)
    sensitive = any(c in config.sensitive_scored and acc[0] > 0 for c, acc in sums.items())
    ranked = sorted((item for item in sums.items() if item[1][0] > 0), key=lambda kv: (-kv[1][0], kv[0]))
    out = []
    for category, (milli, count, entries, gradings) in ranked[: config.top_categories]:
        named = [e for e in entries if sensitive or not (len(e) > 4 and e[4])]
        recent = sorted((e[0], e[1]) for e in named)[-config.incident_ids:] if config.incident_ids else []
        out.append(Contribution(category, milli, count, tuple(iid for _, iid in recent), tuple(gradings)))
    return tuple(out), sensitive


def _count(acc: list, category: str, entry: list, config: TensionConfig, with_id: bool) -> None:
    acc[0] += config.weight_of(category, entry[2])
    acc[1] += 1
    if entry[2] in GRADINGS:
        acc[3][GRADINGS.index(entry[2])] += 1
    if with_id:
        acc[2].append(entry)


def prune(ward: WardState, until_h: int, config: TensionConfig) -> None:
    oldest_h = until_h - config.retention_h
    for h in [h for h in ward.buckets if h < oldest_h]:
        del ward.buckets[h]
    # Older buckets keep their sums but drop their ids: the alert names the most recent ones.
    for h in range(oldest_h, until_h - config.ids_retention_h):
        for cell in (ward.buckets.get(h) or {}).values():
            cell[2] = []
    if ward.potential:
        since = until_h * HOUR - config.watch.potential_within - config.grace - 2 * HOUR
        ward.potential = [p for p in ward.potential if p[0] >= since]
    oldest_day = until_h // 24 - config.baseline_days - 1
    for d in [d for d in ward.days if d < oldest_day]:
        del ward.days[d]


def _prune_calendar(clock: ClockState, limit: int) -> None:
    horizon = limit - KEEP_CALENDAR_H * HOUR
    for pid in [p for p, v in clock.planned.items() if (v[-1][1] is None and v[-1][0] < horizon)
                or (v[-1][1] is not None and v[-1][1]["end"] < horizon)]:
        del clock.planned[pid]
    for sid in [s for s, v in clock.silences.items() if v[4] < horizon]:
        del clock.silences[sid]
    for key in [k for k, v in clock.answers.items() if v and v[0][3] < horizon]:
        del clock.answers[key]


# --- the published fact ----------------------------------------------------------------------


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def to_event(change: LevelChange, ward_name: str, mode: str = LIVE) -> TensionLevelChanged:
    """The alert: deterministic id and times, so a replay publishes the very same event. An
    exercise or test alert carries its mode, and its id its mode too (never a live alert's id)."""
    at = _at(change.at)
    scope = ("tension",) if mode == LIVE else ("tension", mode)
    return TensionLevelChanged(
        event_id=derived_event_id(*scope, change.ward, at.isoformat(), change.old.value, change.new.value),
        occurred_at=at,
        recorded_at=at,
        mode=Mode(mode),
        classification=Classification.OFFICIAL_SENSITIVE if change.sensitive else Classification.OFFICIAL,
        source=Source(kind=SourceKind.SYSTEM, id="tension"),
        ward_code=change.ward,
        ward_name=ward_name,
        old_level=change.old,
        new_level=change.new,
        score=change.score,
        observed=change.observed_milli / 1000,
        expected=change.expected_milli / 1000,
        window=change.window,
        window_start=_at(change.start_h * HOUR),
        window_end=_at(change.end_h * HOUR),
        top_contributors=tuple(
            TensionContribution(
                category=c.category, weighted=c.weight_milli / 1000, count=min(c.count, 10_000),
                incident_ids=tuple(uuid.UUID(i) for i in c.incident_ids),
                evidenced=c.gradings[0], experienced=c.gradings[1], potential=c.gradings[2],
            )
            for c in change.contributors
        ),
        planned_events=tuple(
            PlannedEventRef(planned_event_id=uuid.UUID(r.planned_event_id), name=r.name,
                            kind=PlannedEventKind(r.kind), role=PlannedEventRole(r.role))
            for r in change.planned
        ),
        early=change.early,
    )


def recategorise(clock: ClockState, wards: dict[str, WardState], ind: Indicator, config: TensionConfig) -> Outcome:
    """One correction in a single by-ward partition (every ward is here)."""
    return correct(clock, wards, ind, config, None, 1, Processed(changes=[]))


def replay(per_partition: dict[int, list[Indicator]], config: TensionConfig, partitions: int,
           *, mode: str = LIVE, batch: int = 0) -> list[LevelChange]:
    """What the workers publish for one mode, from what each by-ward partition receives (in
    its order), every source partition then read to its end: the rows one partition sends
    another (a report moving wards) are delivered after what it already had. Pure: the tests'
    and the benchmark's reference."""
    clocks = {p: ClockState() for p in range(partitions)}
    wards: dict[int, dict[str, WardState]] = {p: {} for p in range(partitions)}
    queues = {p: list(per_partition.get(p, ())) for p in range(partitions)}
    sources = max((i.sources for rows in per_partition.values() for i in rows), default=0)
    for p in queues:
        queues[p].append(idle_marker({s: True for s in range(sources)}, sources, mode))
    changes: list[LevelChange] = []
    while any(queues.values()):
        for p in range(partitions):
            rows, queues[p] = queues[p], []
            step = batch or max(1, len(rows))
            for i in range(0, len(rows), step):
                result = process(clocks[p], wards[p], rows[i:i + step], config, partition=p, partitions=partitions,
                                 mode=mode)
                changes.extend(result.changes)
                for target, sent in result.outbox.items():
                    queues[target].extend(sent)
    return changes
