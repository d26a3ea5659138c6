"""The tension configuration: weights, windows, baseline and levels, from YAML.

Validated once at start-up; a bad file fails with a message naming the field.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from services.shared import yamlfile
from services.shared.yamlfile import DURATION_UNITS as _UNITS
from services.shared.yamlfile import HOUR, Strict
from services.shared.events import SENSITIVE_CATEGORIES, Category, PoliceGrading, TensionLevel

DEFAULT_CONFIG_FILE = Path(__file__).with_name("tension.yaml")


class TensionConfigError(yamlfile.ConfigFileError):
    """The tension configuration is missing or invalid; the message names the field."""


Duration = Annotated[float, BeforeValidator(yamlfile.duration_seconds), Field(ge=0)]


class Window(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_/-]{1,20}$")
    size: Duration
    step: Duration

    @model_validator(mode="after")
    def _whole_hours(self) -> "Window":
        for field in ("size", "step"):
            value = getattr(self, field)
            if value <= 0 or value % HOUR:
                raise ValueError(f"{field} must be a positive whole number of hours, got {value:g}s")
        if self.step > self.size:
            raise ValueError("step must not exceed size")
        return self

    @property
    def size_h(self) -> int:
        return int(self.size // HOUR)

    @property
    def step_h(self) -> int:
        return int(self.step // HOUR)

    @property
    def label(self) -> str:
        return f"{self.name}/{_short(self.step)}"


def _short(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


class Prior(Strict):
    daily: float = Field(gt=0)
    strength_days: float = Field(gt=0)
    wards: dict[Annotated[str, Field(pattern=r"^E05\d{6}$")], Annotated[float, Field(gt=0)]] = {}


class Baseline(Strict):
    weeks: int = Field(ge=1, le=52)
    prior: Prior
    min_expected_daily: float = Field(gt=0)


class Threshold(Strict):
    enter: float = Field(gt=0)
    exit: float = Field(gt=0)

    @model_validator(mode="after")
    def _exit_below_enter(self) -> "Threshold":
        if self.exit > self.enter:
            raise ValueError(f"exit ({self.exit:g}) must not be above enter ({self.enter:g})")
        return self


class Levels(Strict):
    elevated: Threshold
    high: Threshold
    critical: Threshold

    @model_validator(mode="after")
    def _rising(self) -> "Levels":
        if not self.elevated.enter < self.high.enter < self.critical.enter:
            raise ValueError("enter thresholds must rise: elevated < high < critical")
        if not self.elevated.exit <= self.high.exit <= self.critical.exit:
            raise ValueError("exit thresholds must not fall: elevated <= high <= critical")
        return self


class Processing(Strict):
    """How the worker batches (the by-ward partitions are topics.yaml's `tension.by_ward`)."""

    batch_max: int = Field(ge=1, le=100_000)
    batch_within: Duration
    idle_after: Duration = 0.5  # a source partition read to its end this long holds no clock back


class Sensitive(Strict):
    score: tuple[Category, ...] = Field((), description="OFFICIAL-SENSITIVE categories opted in to scoring")

    @model_validator(mode="after")
    def _only_sensitive(self) -> "Sensitive":
        plain = [c.value for c in self.score if c not in SENSITIVE_CATEGORIES]
        if plain:
            raise ValueError(f"score: {', '.join(plain)} not OFFICIAL-SENSITIVE (scored by their weight anyway)")
        return self


class Watch(Strict):
    potential_within: Duration = 24 * HOUR
    min_potential: int = Field(1, ge=1, le=1000)


class PlannedEvents(Strict):
    contentious_watch_ahead: Duration = 48 * HOUR

    @model_validator(mode="after")
    def _ahead(self) -> "PlannedEvents":
        if not 24 * HOUR <= self.contentious_watch_ahead <= 72 * HOUR:
            raise ValueError("contentious_watch_ahead: must be between 24h and 72h")
        return self


class TensionConfig(Strict):
    version: Literal[1]
    weights: dict[Category, Annotated[float, Field(ge=0)]]
    grading: dict[PoliceGrading, Annotated[float, Field(ge=0)]] = {}
    windows: tuple[Window, ...] = Field(min_length=1)
    grace: Duration
    baseline: Baseline
    levels: Levels
    min_observed: float = Field(ge=0)
    cool_down: Duration
    top_categories: int = Field(ge=1, le=10)
    incident_ids: int = Field(ge=0, le=50)
    processing: Processing
    sensitive: Sensitive = Sensitive()
    watch: Watch = Watch()
    planned_events: PlannedEvents = PlannedEvents()

    @model_validator(mode="after")
    def _unique_windows(self) -> "TensionConfig":
        names = [w.name for w in self.windows]
        if len(set(names)) != len(names):
            raise ValueError(f"windows: names must be unique, got {names}")
        return self

    # --- derived values used by the rules (integer milli-units keep sums order-independent)

    @cached_property
    def weight_milli(self) -> dict[str, int]:
        """Scored categories only: an OFFICIAL-SENSITIVE one weighs nothing unless opted in."""
        return {c.value: round(w * 1000) for c, w in self.weights.items()
                if c not in SENSITIVE_CATEGORIES or c in self.sensitive.score}

    def scored(self, category: str) -> bool:
        return self.weight_milli.get(category, 0) > 0

    @cached_property
    def sensitive_scored(self) -> frozenset[str]:
        return frozenset(c.value for c in self.sensitive.score)

    @cached_property
    def grading_factor(self) -> dict[str, float]:
        return {g.value: f for g, f in self.grading.items()}

    def weight_of(self, category: str, grading: str | None) -> int:
        """A report's weight in milli-units: the category's weight times its grading's factor."""
        base = self.weight_milli.get(category, 0)
        if grading is not None and grading in self.grading_factor:
            return round(base * self.grading_factor[grading])
        return base

    def prior_daily_milli(self, ward: str) -> int:
        return round(self.baseline.prior.wards.get(ward, self.baseline.prior.daily) * 1000)

    def threshold(self, level: TensionLevel) -> Threshold | None:
        return None if level in (TensionLevel.NORMAL, TensionLevel.WATCH) else getattr(self.levels, level.value)

    @property
    def baseline_days(self) -> int:
        return self.baseline.weeks * 7

    @property
    def retention_h(self) -> int:
        """Hours of buckets kept behind the watermark: the widest window, a step and the grace."""
        widest = max(w.size_h + w.step_h for w in self.windows)
        return widest + int(-(-self.grace // HOUR)) + 1

    @property
    def update_within_h(self) -> int:
        """How far (hours, event time) an update may be from its report and still move its
        weight: the shortest window, so the report's incident id is always still kept."""
        return min(w.size_h for w in self.windows)

    @property
    def ids_retention_h(self) -> int:
        """Hours of buckets that keep their incident ids (dedup and the alert's most recent ids)."""
        return min(w.size_h for w in self.windows) + int(-(-self.grace // HOUR)) + 1


def load_config(path: Path | str = DEFAULT_CONFIG_FILE) -> TensionConfig:
    return yamlfile.load(TensionConfig, path, what="tension config", setting="MUSTER_TENSION_CONFIG_FILE",
                         error=TensionConfigError)
