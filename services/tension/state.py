"""What the tension processor remembers, as plain data that round-trips through JSON.

`WardState`: one ward's hourly buckets, daily totals (its own baseline), level, the
hysteresis clock, the corrections not applied yet and the early evaluation points still to
come. `ClockState`: per partition of the by-ward topic, the event-time clock and idleness of
every source partition (the incidents topic, then the calendar topic), the wards seen there,
the planned events and silences that concern them, and the ward moves waiting for answers
from the other by-ward partitions. Weights are integer milli-units, so sums do not depend on
arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

# bucket: category -> [weight_milli, count, [entry, ...], [evidenced, experienced, potential]]
# entry: (occurred_at_s, incident_id, grading or None, seen_s, sensitive 0/1), a tuple (80 bytes,
# not a list's 96 and more; its grading one shared string); `seen` is the
# event-time point at which the report became visible in its source partition (its own
# occurred_at, or the partition's clock when it came out of order): early evaluations at a
# point m count exactly the entries seen at or before m, whatever the batching.
Bucket = dict[str, list]
REPORT, UPDATE, WITHDRAW, CALENDAR, IDLE, ANSWER = "report", "update", "withdraw", "calendar", "idle", "answer"
KINDS = (REPORT, UPDATE, WITHDRAW, CALENDAR, IDLE, ANSWER)
LIVE = "live"
MODES = ("live", "exercise", "test")


@dataclass(frozen=True, slots=True)
class Indicator:
    """One fact as the tension processor needs it (no free text, no people).

    - report: a counted `IncidentReported`;
    - update: an `IncidentUpdated` changing category, grading or ward (`ward` is the new
      ward, None when unchanged; category and grading None when unchanged). It goes to every
      by-ward partition and the one holding the report applies it;
    - withdraw: a duplicate linked to its lead, or an incident closed unfounded or false alarm;
    - calendar: a planned event (registered, updated, cancelled) or a silence (`extra`);
    - idle: the re-keying stage's word on which source partitions it has read to their end,
      and how far each one's clock has come (its watermark, sent to every by-ward partition);
    - answer: one by-ward partition's answer to another about a report moving wards.
    """

    incident_id: str
    ward: str | None
    category: str | None
    grading: str | None
    at: int  # occurred_at, epoch seconds
    source: int  # source partition it came from (incidents partitions, then calendar ones)
    sources: int  # source partitions in all
    kind: str = REPORT
    mode: str = LIVE  # exercise and test facts are scored apart from live ones, never mixed
    sensitive: bool = False  # the incident is OFFICIAL-SENSITIVE: its id is named in no OFFICIAL alert
    extra: dict | None = None
    # The source partition's clock just before this fact (in this mode): the newest occurred_at
    # of every fact tension reads that came before it there, whichever ward it went to. Set by
    # the re-keying stage (rules.stamp); None when it could not know (then the by-ward
    # partition's own view of that source's clock stands in).
    clock: int | None = None

    def pack(self, clock: int | None = None) -> list:
        """The by-ward row; `clock` stamps it (rules.stamp) when the fact has none of its own."""
        row = [self.incident_id, self.ward, self.category, self.grading, self.at, self.source, self.sources]
        tail = [self.kind, self.mode, 1 if self.sensitive else 0, self.extra, self.clock if clock is None else clock]
        defaults = [REPORT, LIVE, 0, None, None]
        while tail and tail[-1] == defaults[len(tail) - 1]:
            tail.pop()
        return row + tail

    @classmethod
    def unpack(cls, row: list) -> "Indicator":
        incident_id, ward, category, grading, at, source, sources, *rest = row
        if not (isinstance(at, int) and isinstance(source, int) and isinstance(sources, int)):
            raise ValueError("indicator: at, source and sources must be integers")
        if len(rest) > 5:
            raise ValueError("indicator: too many fields")
        kind = rest[0] if rest else REPORT
        mode = rest[1] if len(rest) > 1 else LIVE
        sensitive = bool(rest[2]) if len(rest) > 2 else False
        extra = rest[3] if len(rest) > 3 else None
        clock = rest[4] if len(rest) > 4 else None
        if kind not in KINDS or mode not in MODES or not (extra is None or isinstance(extra, dict)):
            raise ValueError(f"indicator: unknown kind {kind!r} or mode {mode!r}")
        if not (clock is None or (isinstance(clock, int) and not isinstance(clock, bool))):
            raise ValueError("indicator: clock must be an integer")
        return cls(str(incident_id), ward, category, grading, at, source, sources, kind, mode, sensitive, extra,
                   clock)


@dataclass(slots=True)
class WardState:
    ward: str
    level: str = "normal"
    since_day: int | None = None
    evaluated_h: int | None = None  # the last window end evaluated on time
    below_since_h: int | None = None
    buckets: dict[int, Bucket] = field(default_factory=dict)
    days: dict[int, int] = field(default_factory=dict)
    scores: dict[str, list[int]] = field(default_factory=dict)  # window -> [observed, expected, start_h, end_h]
    # corrections not applied to the buckets yet, in arrival order:
    # [effective after hour, report hour, occurred_at_s, incident_id, old category, old grading,
    #  new category, new grading, seen point, sensitive]; old None: a report moving in,
    #  new None: withdrawn (linked duplicate, unfounded, false alarm, moved to another ward)
    moves: list[list] = field(default_factory=list)
    points: list[int] = field(default_factory=list)  # early evaluation points still to come, sorted
    spec: list | None = None  # [level, window end hour]: a level raised early, until its window closes
    potential: list[list] = field(default_factory=list)  # [occurred_at_s, incident_id, seen, category] graded potential

    def dumps(self) -> bytes:
        return orjson.dumps(self, option=orjson.OPT_NON_STR_KEYS)  # orjson serialises dataclasses natively

    @classmethod
    def loads(cls, raw: bytes | str) -> "WardState":
        data = orjson.loads(raw)
        data["buckets"] = {int(h): {category: [cell[0], cell[1], [_entry(e) for e in cell[2]], *cell[3:]]
                                    for category, cell in b.items()} for h, b in data["buckets"].items()}
        data["days"] = {int(d): v for d, v in data["days"].items()}
        data["potential"] = [_entry(p) for p in data.get("potential", [])]
        return cls(**data)


_SHARED: dict[str, str] = {}  # one string per grading and category read back from a changelog


def _entry(row: list) -> tuple:
    """A report entry (or potential row) read back: a tuple, its strings but the id shared."""
    return tuple(_SHARED.setdefault(v, v) if isinstance(v, str) and i != 1 else v for i, v in enumerate(row))


@dataclass(slots=True)
class ClockState:
    clocks: dict[int, int] = field(default_factory=dict)  # source partition -> newest occurred_at (s)
    idle: dict[int, bool] = field(default_factory=dict)  # source partition -> read to its end
    sources: int = 0
    wards: list[str] = field(default_factory=list)
    done: int | None = None  # the last point evaluated
    # planned event id -> versions [[seen point, registration or None when cancelled], ...]
    planned: dict[str, list] = field(default_factory=dict)
    # silence id -> [seen point, ward, category, from_s, until_s]
    silences: dict[str, list] = field(default_factory=dict)
    # "incident|update at" -> [point, answers awaited, details or None] (a report moving in)
    holds: dict[str, list] = field(default_factory=dict)
    answers: dict[str, list] = field(default_factory=dict)  # answers that came before their update

    def dumps(self) -> bytes:
        return orjson.dumps(self, option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def loads(cls, raw: bytes | str) -> "ClockState":
        data = orjson.loads(raw)
        data["clocks"] = {int(p): h for p, h in data["clocks"].items()}
        data["idle"] = {int(p): v for p, v in data.get("idle", {}).items()}
        return cls(**data)
