"""Issue 17's soak: the scorer rewrote every ward of its partition to the table and its
changelog with every batch (2.7 MB a batch on a synthetic two days, bench/tension_memory.py).
Only a ward whose state the batch changed is written; restored, its state is the same."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.shared.settings import Settings
from services.tension.app import build
from services.tension.config import HOUR, load_config
from services.tension.rules import idle_marker, process
from services.tension.state import ClockState, Indicator, WardState

pytestmark = pytest.mark.unit
CONFIG = load_config()
WHITECHAPEL, BOW_EAST = "E05009336", "E05009319"


def _recording(tension, monkeypatch) -> list[tuple[str, object]]:
    sent: list[tuple[str, object]] = []
    for table in (tension.tables.wards, tension.tables.clocks):
        def send_changelog(partition, key, value, *args, _name=table.name, **kwargs):
            sent.append((_name, key))
            return SimpleNamespace(message=SimpleNamespace(partition=partition))
        monkeypatch.setattr(table, "send_changelog", send_changelog)
    return sent


def test_a_batch_writes_only_the_wards_it_changed(tmp_path, monkeypatch):
    tension = build(Settings(home=tmp_path))
    sent = _recording(tension, monkeypatch)
    clock, wards = ClockState(), {}
    t0 = 1000 * HOUR + 60
    idle = idle_marker({0: True}, 1)
    process(clock, wards, [Indicator("a", WHITECHAPEL, "noise", None, t0, 0, 1),
                           Indicator("b", BOW_EAST, "noise", None, t0, 0, 1), idle], CONFIG)
    tension.tables.save(0, clock, wards)
    assert sorted(n for n, _ in sent) == ["clocks", "wards", "wards"]
    sent.clear()
    wards = tension.tables.ward_states(clock.wards)
    process(clock, wards, [Indicator("c", WHITECHAPEL, "noise", None, t0 + 1, 0, 1), idle], CONFIG)
    tension.tables.save(0, clock, wards)
    assert [k for n, k in sent if n == "wards"] == [WHITECHAPEL]  # Bow East was left as it was


def test_a_ward_state_read_back_from_its_changelog_is_the_state_written():
    clock, wards = ClockState(), {}
    t0 = 1000 * HOUR + 60
    inds = [Indicator(f"r{i}", WHITECHAPEL, "hate_incident", "potential" if i % 2 else None, t0 + i, 0, 1)
            for i in range(5)]
    process(clock, wards, [*inds, idle_marker({0: True}, 1)], CONFIG)
    ward = wards[WHITECHAPEL]
    back = WardState.loads(ward.dumps())
    assert back == ward and back.dumps() == ward.dumps()
