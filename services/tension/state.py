"""What the tension processor remembers, as plain data that round-trips through JSON.

`WardState`: one ward's hourly buckets, daily totals (its own baseline), level and the
hysteresis clock. `ClockState`: per partition of the by-ward topic, the event-time clock
of every source partition of the incidents topic, and the wards seen there.
Weights are integer milli-units, so sums do not depend on arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

# bucket: category -> [weight_milli, count, [[occurred_at_s, incident_id(, grading)], ...]]
Bucket = dict[str, list]
REPORT, UPDATE = "report", "update"
LIVE = "live"
MODES = ("live", "exercise", "test")


@dataclass(frozen=True, slots=True)
class Indicator:
    """One incident report, or an update changing its category or grading, as the tension
    processor needs it (no free text, no people). An update names no ward (None): it goes
    to every by-ward partition and the one holding the report applies it; its category and
    grading are None when unchanged."""

    incident_id: str
    ward: str | None
    category: str | None
    grading: str | None
    at: int  # occurred_at, epoch seconds
    source: int  # partition of the incidents topic it came from
    sources: int  # partitions of the incidents topic
    kind: str = REPORT
    mode: str = LIVE  # exercise and test facts are scored apart from live ones, never mixed

    def pack(self) -> list:
        row = [self.incident_id, self.ward, self.category, self.grading, self.at, self.source, self.sources]
        if self.mode != LIVE:
            return [*row, self.kind, self.mode]
        return row if self.kind == REPORT else [*row, self.kind]

    @classmethod
    def unpack(cls, row: list) -> "Indicator":
        incident_id, ward, category, grading, at, source, sources, *rest = row
        if not (isinstance(at, int) and isinstance(source, int) and isinstance(sources, int)):
            raise ValueError("indicator: at, source and sources must be integers")
        kind = rest[0] if rest else REPORT
        mode = rest[1] if len(rest) > 1 else LIVE
        if kind not in (REPORT, UPDATE) or mode not in MODES or len(rest) > 2:
            raise ValueError(f"indicator: unknown kind {kind!r} or mode {mode!r}")
        return cls(str(incident_id), ward, category, grading, at, source, sources, kind, mode)


@dataclass(slots=True)
class WardState:
    ward: str
    level: str = "normal"
    since_day: int | None = None
    evaluated_h: int | None = None
    below_since_h: int | None = None
    buckets: dict[int, Bucket] = field(default_factory=dict)
    days: dict[int, int] = field(default_factory=dict)
    scores: dict[str, list[int]] = field(default_factory=dict)  # window -> [observed, expected, start_h, end_h]
    # category or grading changes not applied yet, in arrival order:
    # [effective after hour, report hour, occurred_at_s, incident_id, old category, old grading, new category, new grading]
    moves: list[list] = field(default_factory=list)

    def dumps(self) -> bytes:
        return orjson.dumps(self, option=orjson.OPT_NON_STR_KEYS)  # orjson serialises dataclasses natively

    @classmethod
    def loads(cls, raw: bytes | str) -> "WardState":
        data = orjson.loads(raw)
        data["buckets"] = {int(h): b for h, b in data["buckets"].items()}
        data["days"] = {int(d): v for d, v in data["days"].items()}
        return cls(**data)


@dataclass(slots=True)
class ClockState:
    clocks: dict[int, int] = field(default_factory=dict)  # source partition -> hour of newest occurred_at
    sources: int = 0
    wards: list[str] = field(default_factory=list)

    def dumps(self) -> bytes:
        return orjson.dumps(self, option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def loads(cls, raw: bytes | str) -> "ClockState":
        data = orjson.loads(raw)
        data["clocks"] = {int(p): h for p, h in data["clocks"].items()}
        return cls(**data)
