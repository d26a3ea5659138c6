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


def wards() -> dict[str, Ward]:
    """The wards in force: MUSTER_WARDS_FILE if set, else the packaged list."""
    from services.shared.settings import get_settings

    return load_wards(get_settings().wards_file)
