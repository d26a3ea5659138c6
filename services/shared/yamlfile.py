"""The one way a YAML file of configuration is read: topics.yaml, the escalation rules, the
tension configuration. One error style for all of them, on one line:

    <file>: rule 'fire-major' field when.min_severity: Input should be less than or equal to 5
    <file>: field grace: not a duration

A member of a top-level list is named by its `id` (`topic 'incidents'`, `rule 'x'`), or its
position (`#3`) when it has none; every other place by its dotted field path. The files'
models share `Strict` (frozen, unknown fields refused) and one way to write a duration
(`duration_seconds`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)
HOUR = 3600
DAY = 24 * HOUR
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": HOUR, "d": DAY, "w": 7 * DAY}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


class Strict(BaseModel):
    """A configuration file's model: frozen, and a field it does not know is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def duration_seconds(value: object) -> float:
    """A duration of a configuration file in seconds: a number (seconds), or a number with
    ms, s, m, h, d or w (`'48h'`, `'30d'`); anything else is a ValueError saying so."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use a number with s, m, h, d or w, e.g. '6h')")
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


class ConfigFileError(ValueError):
    """A configuration file is missing or invalid; the message names the item and the field."""


def read_yaml(path: Path | str, *, what: str, setting: str, error: type[ConfigFileError] = ConfigFileError) -> object:
    """The file's YAML, or `error` saying it is missing (and which setting names it) or not YAML."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{what} not found: {path} (set {setting})") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def validate(model: type[M], raw: object, where: str, *, items: Mapping[str, str] | None = None,
             error: type[ConfigFileError] = ConfigFileError) -> M:
    """`raw` as `model`, or `error` naming every problem. `items`: top-level list -> what one
    member is called (`{"rules": "rule"}`)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{locate(raw, list(err['loc']), items or {})}: {err['msg']}" for err in exc.errors(include_url=False)]
        raise error(f"{where}: " + "; ".join(problems)) from None


def load(model: type[M], path: Path | str, *, what: str, setting: str, items: Mapping[str, str] | None = None,
         error: type[ConfigFileError] = ConfigFileError) -> M:
    """Read and validate one configuration file."""
    return validate(model, read_yaml(path, what=what, setting=setting, error=error), str(path), items=items,
                    error=error)


def locate(raw: object, loc: list, items: Mapping[str, str]) -> str:
    """`rule 'fire-major' field when.min_severity` for a member of a named list, `field a.b` otherwise."""
    if len(loc) >= 2 and loc[0] in items and isinstance(loc[1], int):
        try:
            ident = raw[loc[0]][loc[1]].get("id") or f"#{loc[1]}"  # type: ignore[index]
        except (TypeError, KeyError, IndexError, AttributeError):
            ident = f"#{loc[1]}"
        field = ".".join(str(p) for p in loc[2:]) or f"({items[loc[0]]})"
        return f"{items[loc[0]]} {ident!r} field {field}"
    return "field " + (".".join(str(p) for p in loc) or "(file)")
