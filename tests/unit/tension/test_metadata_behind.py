"""The early-kill bug escalation had (tests/unit/escalation/test_metadata_behind.py): a table
whose changelog the worker's group metadata does not know yet (a topic created just before the
worker joined) makes faust refuse a write whose partition it takes from the current event
(PartitionsMismatch, "has 0 partitions"). Tension's tables name the changelog partition of every
write (services/shared/tables.PinnedTable), so faust never checks the source topic against the
changelog there: a write goes to its pinned partition whatever the metadata says."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.shared.settings import Settings
from services.tension.app import build
from services.tension.state import ClockState, WardState

pytestmark = pytest.mark.unit


def test_a_state_write_goes_to_its_pinned_partition_while_the_changelog_is_unknown(tmp_path, monkeypatch):
    tension = build(Settings(home=tmp_path))
    sent: list[tuple[str, int | None]] = []
    for table in (tension.tables.wards, tension.tables.clocks):
        # what the worker's metadata says of a changelog created just before it joined
        monkeypatch.setattr(table, "_verify_source_topic_partitions", _mismatch)
        monkeypatch.setattr(table, "send_changelog", _recorder(table.name, sent))
    tension.tables.save(2, ClockState(), {"E05009336": WardState(ward="E05009336")})
    assert sorted(sent) == [("clocks", 2), ("wards", 2)]


def _recorder(name: str, sent: list):
    def send_changelog(partition, key, *args, **kwargs):  # faust's producer, not started here
        sent.append((name, partition))
        return SimpleNamespace(message=SimpleNamespace(partition=partition))
    return send_changelog


def _mismatch(_source_topic: str) -> None:
    from faust.exceptions import PartitionsMismatch

    raise PartitionsMismatch("... has 0 partitions")
