"""The borough's wards (ONS codes), shipped as package data and replaceable by configuration."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from services.shared import settings as _settings

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


_in_force: tuple[object, dict[str, Ward]] | None = None  # (the Settings they came from, the wards)


def wards() -> dict[str, Ward]:
    """The wards in force: MUSTER_WARDS_FILE if set, else the packaged list. Every event's
    validation asks, so the answer is kept for as long as the same Settings are in force."""
    global _in_force
    settings = _settings.get_settings()
    if _in_force is None or _in_force[0] is not settings:
        _in_force = (settings, load_wards(settings.wards_file))
    return _in_force[1]
