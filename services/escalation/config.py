"""The escalation rules file: YAML, validated at start-up into a frozen RuleSet.

A bad file fails start-up with one message naming the rule id and the field
(`rules.yaml: rule 'fire-major' field when.min_severity: ...`). See docs/escalation.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.shared import yamlfile
from services.shared.events import Agency, Category, Hazard

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")]
Level = Annotated[int, Field(ge=1, le=3)]
LEVELS = (1, 2, 3)


class RulesFileError(yamlfile.ConfigFileError):
    """The rules file is missing or invalid; the message names the rule and the field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelSpec(_Frozen):
    name: str = Field(min_length=1, max_length=60)
    agencies: tuple[Agency, ...] = Field(min_length=1)


class Conditions(_Frozen):
    """Every condition given must hold; a condition left out is not checked."""

    categories: tuple[Category, ...] | None = Field(None, min_length=1)
    min_severity: int | None = Field(None, ge=1, le=5)
    min_casualties: int | None = Field(None, ge=1, description="fatalities + serious + minor")
    min_fatalities: int | None = Field(None, ge=1)
    min_serious: int | None = Field(None, ge=1)
    hazards_any: tuple[Hazard, ...] | None = Field(None, min_length=1)
    major_incident_declared: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> "Conditions":
        if all(v is None for v in self.__dict__.values()):
            raise ValueError("a rule needs at least one condition")
        return self


class ThresholdRule(_Frozen):
    id: RuleId
    description: str = Field(min_length=1, max_length=160)
    level: Level
    when: Conditions
    agencies: tuple[Agency, ...] = Field((), description="Agencies added to the level's own.")


class CorroborationRule(_Frozen):
    """N independent reports (distinct sources) of one kind within R metres and T minutes."""

    id: RuleId
    description: str = Field(min_length=1, max_length=160)
    categories: tuple[Category, ...] = Field(min_length=1)
    min_reports: int = Field(ge=2, le=50)
    radius_m: float = Field(gt=0, le=5000)
    window_minutes: float = Field(gt=0, le=24 * 60)
    level: Level


class CorrelationRule(_Frozen):
    """Reports of these categories within R metres and T minutes of a lead are the same emergency."""

    id: RuleId
    description: str = Field(min_length=1, max_length=160)
    categories: tuple[Category, ...] = Field(min_length=1)
    radius_m: float = Field(gt=0, le=5000)
    window_minutes: float = Field(gt=0, le=24 * 60)


class AcknowledgementPolicy(_Frozen):
    """Unacknowledged past its severity's deadline, an incident climbs one level, up to the limit."""

    deadline_seconds: dict[Annotated[int, Field(ge=1, le=5)], Annotated[float, Field(gt=0)]] = {}
    climb_limit: Level = 2

    def deadline_for(self, severity: int | None) -> float | None:
        return self.deadline_seconds.get(severity) if severity is not None else None


class RuleSet(_Frozen):
    version: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    levels: dict[Level, LevelSpec]
    rules: tuple[ThresholdRule, ...] = ()
    corroboration: tuple[CorroborationRule, ...] = ()
    correlation: tuple[CorrelationRule, ...] = ()
    acknowledgement: AcknowledgementPolicy = AcknowledgementPolicy()

    @field_validator("levels")
    @classmethod
    def _every_level(cls, value: dict[int, LevelSpec]) -> dict[int, LevelSpec]:
        missing = [lv for lv in LEVELS if lv not in value]
        if missing:
            raise ValueError(f"levels {missing} are not defined (need 1, 2 and 3)")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> "RuleSet":
        seen: set[str] = set()
        for rule in (*self.rules, *self.corroboration, *self.correlation):
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        covered: dict[Category, str] = {}
        for rule in self.correlation:
            for category in rule.categories:
                if category in covered:
                    raise ValueError(f"category {category.value!r} is in correlation rules {covered[category]!r} "
                                     f"and {rule.id!r} (at most one)")
                covered[category] = rule.id
        for rule in self.corroboration:
            missing = [c.value for c in rule.categories if c not in covered]
            if missing:
                raise ValueError(f"corroboration rule {rule.id!r}: categories {missing} need a correlation rule "
                                 "(reports are grouped by it)")
        return self

    def corroboration_for(self, category: Category) -> tuple[CorroborationRule, ...]:
        return tuple(r for r in self.corroboration if category in r.categories)

    def correlation_for(self, category: Category | str) -> CorrelationRule | None:
        return next((r for r in self.correlation if category in r.categories), None)


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file; RulesFileError names the rule and field of every problem."""
    raw = yamlfile.read_yaml(path, what="rules file", setting="MUSTER_ESCALATION_RULES_FILE", error=RulesFileError)
    return parse_rules(raw, str(path))


def parse_rules(raw: object, where: str = "rules") -> RuleSet:
    return yamlfile.validate(RuleSet, raw, where, items={"rules": "rule", "corroboration": "rule", "correlation": "rule"}, error=RulesFileError)
