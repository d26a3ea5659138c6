"""The casework configuration (casework.yaml): thresholds, windows, clocks, the gate.

Validated once at start-up; a bad file fails with one message naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from services.shared import yamlfile
from services.shared.yamlfile import DAY, HOUR, Strict
from services.shared.events import Category

DEFAULT_CONFIG_FILE = Path(__file__).with_name("casework.yaml")


class CaseworkConfigError(yamlfile.ConfigFileError):
    """The casework configuration is missing or invalid; the message names the field."""


def _seconds(value: object) -> int:
    seconds = yamlfile.duration_seconds(value)
    if seconds != int(seconds):
        raise ValueError(f"not a whole number of seconds: {value!r}")
    return int(seconds)


Seconds = Annotated[int, BeforeValidator(_seconds), Field(gt=0)]


class Thresholds(Strict):
    default: int = Field(3, ge=1, le=3, description="The statutory guidance caps it at three.")
    hate_motivated: int = Field(2, ge=1)
    vulnerable_victim: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _not_above_default(self) -> "Thresholds":
        for name in ("hate_motivated", "vulnerable_victim"):
            if getattr(self, name) > self.default:
                raise ValueError(f"{name} must not be higher than default ({self.default})")
        return self


class Clocks(Strict):
    decision: int = Field(10, ge=1, le=100, description="working days")
    review: int = Field(25, ge=1, le=200, description="working days")


class AsbCaseReview(Strict):
    categories: frozenset[Category]
    qualify_within: Seconds = 30 * DAY
    window: Seconds = 182 * DAY
    thresholds: Thresholds = Thresholds()
    clocks: Clocks = Clocks()


class PremisesRule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    window: Seconds
    min_reports: int = Field(ge=1, le=1000)
    min_agencies: int = Field(1, ge=1, le=6)


class Premises(Strict):
    categories: frozenset[Category]
    rules: tuple[PremisesRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Premises":
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"rule ids must be unique, got {ids}")
        return self

    @property
    def longest_window(self) -> int:
        return max(r.window for r in self.rules)


class WarnBefore(Strict):
    notice_expires: Seconds = 6 * HOUR
    court_deadline: Seconds = 12 * HOUR
    order_expires: Seconds = 14 * DAY


class Closure(Strict):
    court_within: Seconds = 48 * HOUR
    order_max_months: int = Field(3, ge=1, le=3)
    order_total_max_months: int = Field(6, ge=1, le=6)
    warn_before: WarnBefore = WarnBefore()


class Safeguarding(Strict):
    categories: frozenset[Category] = Field(min_length=1)


class Processing(Strict):
    batch_max: int = Field(2000, ge=1, le=100_000)
    batch_within_ms: int = Field(250, ge=1, le=60_000)
    tick: Seconds = 30
    max_entries: int = Field(
        1000, ge=10, le=5000,
        description="entries a case keeps at most (the newest); more than any threshold needs, so a busy "
        "address cannot grow its state past what one record carries",
    )

    @property
    def batch_within(self) -> float:
        return self.batch_within_ms / 1000


class CaseworkConfig(Strict):
    version: int = Field(1, ge=1, le=1)
    asb_case_review: AsbCaseReview
    premises: Premises
    closure: Closure = Closure()
    safeguarding: Safeguarding
    processing: Processing = Processing()

    @model_validator(mode="after")
    def _room_for_every_rule(self) -> "CaseworkConfig":
        need = max(r.min_reports for r in self.premises.rules)
        if self.processing.max_entries <= need:
            raise ValueError(f"processing.max_entries ({self.processing.max_entries}) must exceed every premises "
                             f"rule's min_reports (up to {need})")
        return self

    @property
    def horizon(self) -> int:
        """How far behind a case's newest fact an entry is still kept: twice the longest window, so
        a fact that arrives up to one window late still finds what it counts with."""
        return 2 * max(self.asb_case_review.window + self.asb_case_review.qualify_within, self.premises.longest_window)


def load_config(path: Path | str = DEFAULT_CONFIG_FILE) -> CaseworkConfig:
    return yamlfile.load(CaseworkConfig, path, what="casework config", setting="MUSTER_CASEWORK_CONFIG_FILE",
                         error=CaseworkConfigError)
