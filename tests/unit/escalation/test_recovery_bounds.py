"""Regression (issue 17, the third soak: the escalation worker's RSS stepped 122 -> 266 MB at a
rejoin and to 453 / 478 MB at each restart, its table no larger): what a recovery reads and
holds is bounded by what the tables keep, not by their whole history.

bench/escalation_recovery.py measured it: 50,000 events at 400/s, the finished incidents
released, then a kill -9: the corroboration-windows changelog was 2,031 records / 352 MB for
5 keys (a window of up to ~400 KB written whole for every candidate, never compacted), read
back 1,000 records at a time, and the worker's RSS went from 134 to 382 MB.
"""

import pytest

from services.escalation.agents import WINDOWS_RECOVERY_BUFFER
from services.escalation.app import build
from services.escalation.corroboration import MAX_CANDIDATES
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from tests.unit.escalation.helpers import DEFAULT_RULES

pytestmark = pytest.mark.unit

HOUR_MS = 3_600_000


def _changelogs(catalog: TopicCatalog):
    return [t for t in catalog if t.app is not None and "compact" in t.cleanup_policy]


def test_every_processor_changelog_is_compacted_within_the_hour():
    """Kafka never cleans a topic's active segment; with the default segment.ms (7 days) a
    changelog was never compacted within a soak and a restart read every record ever written."""
    catalog = TopicCatalog.from_settings(Settings())
    changelogs = _changelogs(catalog)
    assert {t.app for t in changelogs} == {"escalation", "tension", "casework"}
    for topic in changelogs:
        configs = catalog.configs(topic)
        assert int(configs.get("segment.ms", 7 * 24 * HOUR_MS)) <= HOUR_MS, topic.id
        assert float(configs.get("min.cleanable.dirty.ratio", 0.5)) <= 0.1, topic.id
        assert int(configs.get("delete.retention.ms", 24 * HOUR_MS)) <= HOUR_MS, topic.id


def test_the_windows_table_recovers_a_few_windows_at_a_time(tmp_path):
    escalation = build(Settings(home=tmp_path), DEFAULT_RULES)  # connects to nothing
    assert escalation.windows.recovery_buffer_size == WINDOWS_RECOVERY_BUFFER
    window_bytes = MAX_CANDIDATES * 400  # a full window, about 400 bytes of JSON per candidate
    assert WINDOWS_RECOVERY_BUFFER * window_bytes <= 8_000_000  # held at once while recovering
