"""The whole feed for a period: background incidents hour by hour, scenarios at their times,
merged into one stream in the order intake would record them (by `recorded_at`).

Deterministic: each hour and each scenario draws from its own generator seeded with
(seed, what, when), so the same seed and start give byte-identical events, and an hour's
events do not depend on how long the period is.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Iterator

from services.shared import events as ev
from services.shared.events import Mode
from services.shared.wards import wards
from services.simulator.lives import incident
from services.simulator.model import CATEGORIES, hourly_rate, ward_profile
from services.simulator.scenarios import SCENARIOS, Scenario, first_at_or_after

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class FeedConfig:
    start: datetime
    hours: float = 24.0
    seed: int = 7
    intensity: float = 1.0  # multiplies every background rate
    background: bool = True
    scenarios: tuple[tuple[str, time | None], ...] = field(default_factory=tuple)  # (name, time of day or None)
    mode: Mode = Mode.LIVE
    exercise: str | None = None  # the exercise's name or id, when mode is exercise (default: "simulated exercise")

    def __post_init__(self) -> None:
        if self.exercise is not None and self.mode is not Mode.EXERCISE:
            raise ValueError("exercise: only an exercise-mode feed names an exercise")
        if self.start.tzinfo is None:
            raise ValueError("start: must be timezone-aware")
        if self.hours <= 0:
            raise ValueError("hours: must be more than 0")
        if self.intensity < 0:
            raise ValueError("intensity: must not be negative")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of one ward and category in one hour."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def background(config: FeedConfig, slot_start: datetime, slot_end: datetime) -> list[ev.IncidentEvent]:
    """Every ordinary incident that happens in [slot_start, slot_end), with its whole life."""
    rng = random.Random(f"{config.seed}/background/{slot_start.isoformat()}")
    fraction = (slot_end - slot_start) / HOUR
    seconds = int((slot_end - slot_start).total_seconds())
    out: list[ev.IncidentEvent] = []
    for ward in wards().values():
        profile_of_ward = ward_profile(ward.name)
        for profile in CATEGORIES:
            mean = hourly_rate(profile, profile_of_ward, slot_start, config.intensity) * fraction
            for _ in range(poisson(rng, mean)):
                occurred_at = slot_start + timedelta(seconds=rng.randrange(max(seconds, 1)))
                out += incident(rng, profile, ward, occurred_at, config.mode)
    return out


def planned_scenarios(config: FeedConfig) -> list[tuple[Scenario, datetime]]:
    """Each switched-on scenario at its first time of day inside the period (others are left out)."""
    planned = []
    for name, when in config.scenarios:
        scenario = SCENARIOS[name]
        at = first_at_or_after(config.start, when or scenario.time_of_day)
        if at < config.end:
            planned.append((scenario, at))
    return planned


def scenario_events(config: FeedConfig, scenario: Scenario, at: datetime) -> list[ev.IncidentEvent]:
    rng = random.Random(f"{config.seed}/scenario/{scenario.name}/{at.isoformat()}")
    return scenario.build(rng, at, config.mode)


def generate(config: FeedConfig) -> Iterator[ev.IncidentEvent]:
    """The feed (see _feed); every exercise report names the feed's exercise."""
    for event in _feed(config):
        if config.exercise and isinstance(event, ev.IncidentReported):
            event = event.model_copy(update={"exercise": config.exercise})
        yield event


def _feed(config: FeedConfig) -> Iterator[ev.IncidentEvent]:
    """The feed, lazily, in `recorded_at` order (per incident, always in the order it happened).

    Incidents are made an hour at a time; an event is released once no incident still to be
    made could be recorded before it, so memory holds only the lives in progress.
    """
    heap: list[tuple[datetime, int, ev.IncidentEvent]] = []
    order = itertools.count()

    def push(events: list[ev.IncidentEvent]) -> None:
        for event in events:
            heapq.heappush(heap, (event.recorded_at, next(order), event))

    pending = sorted(planned_scenarios(config), key=lambda p: p[1])
    slot = config.start
    while slot < config.end:
        slot_end = min(slot + HOUR, config.end)
        while pending and pending[0][1] < slot_end:
            push(scenario_events(config, *pending.pop(0)))
        if config.background:
            push(background(config, slot, slot_end))
        while heap and heap[0][0] < slot_end:
            yield heapq.heappop(heap)[2]
        slot = slot_end
    while heap:
        yield heapq.heappop(heap)[2]

