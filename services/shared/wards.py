"""The borough's wards (ONS codes), shipped as package data and replaceable by configuration."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_WARDS_FILE = Path(__file__).parent / "data" / "wards.csv"


@dataclass(frozen=True, slots=True)
class Ward:
    code: str
    name: str
    lat: float
    lon: float


@lru_cache(maxsize=8)
def load_wards(path: Path = DEFAULT_WARDS_FILE) -> dict[str, Ward]:
    with open(path, newline="") as f:
        return {
            row["ward_code"]: Ward(row["ward_code"], row["ward_name"], float(row["approx_lat"]), float(row["approx_lon"]))
            for row in csv.DictReader(f)
        }


_in_force: dict[str, Ward] | None = None


def use_wards(in_force: dict[str, Ward]) -> None:
    """The borough's wards for this process: set once at start-up (`muster` does it from
    MUSTER_WARDS_FILE before any command runs), so an event's validity never depends on
    reading settings inside a validator."""
    global _in_force
    _in_force = dict(in_force)


def wards() -> dict[str, Ward]:
    """The wards in force: those given to use_wards, else the packaged list."""
    return _in_force if _in_force is not None else load_wards()
