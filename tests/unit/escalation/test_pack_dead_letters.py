"""A pack's unreadable facts are dead-lettered together, not one round trip each: one at a
time, a poison storm's packs held the escalation worker 3,000 packs behind its topic for two
minutes after the storm (the soak of 2026-12-03, docs/chaos.md)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest

from services.escalation.app import build
from services.shared.settings import Settings
from tests.fakes import FakeStateStore, RecordingSink

pytestmark = pytest.mark.unit
POISON = 50


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes = b"1"
    headers: tuple = ()


class SlowBroker(RecordingSink):
    """Each dead letter is acknowledged only once `POISON` of them are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight, self.most = 0, 0
        self.all_in_flight = asyncio.Event()

    async def dead_letter(self, record, error, input_name) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= POISON:
            self.all_in_flight.set()
        await self.all_in_flight.wait()
        self.in_flight -= 1
        await super().dead_letter(record, error, input_name)


async def test_a_packs_unreadable_facts_are_dead_lettered_at_once_with_their_offsets(tmp_path):
    escalation = build(Settings(home=tmp_path))
    escalation.sink, escalation.store = SlowBroker(), FakeStateStore()
    rows = [[100 + i, f"incident-{i}", "{not json"] for i in range(POISON)]
    pack = Msg(escalation.packed_name, 3, 7, orjson.dumps(rows))
    await asyncio.wait_for(escalation.on_pack(pack), 5)  # one at a time, this never finishes
    assert escalation.sink.most == POISON
    assert sorted(record.offset for record, _, _ in escalation.sink.dead) == [100 + i for i in range(POISON)]
    assert {(record.topic, record.partition) for record, _, _ in escalation.sink.dead} == {(escalation.incidents_name, 3)}
