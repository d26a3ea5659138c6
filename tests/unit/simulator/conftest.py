from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.simulator.generator import FeedConfig, generate
from services.simulator.scenarios import SCENARIOS

# A Friday: the day and the night after it cover a working day and a weekend night.
FRIDAY = datetime(2026, 11, 20, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def day():
    """One simulated day with every scenario switched on."""
    return list(generate(FeedConfig(start=FRIDAY, hours=24, seed=7, scenarios=tuple((n, None) for n in SCENARIOS))))
