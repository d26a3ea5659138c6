"""The contract of the projector's status store (services.projector.ports.StatusStorePort):
one base class of tests, run against the fake (tests/unit/projector/test_store_contract.py)
and, marked postgres, against PostgreSQL (tests/integration/projector/test_status_store.py)."""

from __future__ import annotations

import uuid

from services.projector.handlers import Batch, Position, stage
from services.shared import codec
from tests.factories import fact, reported
from services.shared import events as ev

TOPIC = "incidents.events.v1"


def batch_of(*events, first_offset: int = 0, partition: int = 0) -> Batch:
    batch = Batch()
    for i, event in enumerate(events):
        stage(batch, event, codec.encode(event).value.decode(), Position(TOPIC, partition, first_offset + i))
    return batch


class StatusStoreContract:
    async def make_store(self):
        raise NotImplementedError

    async def test_a_batch_s_offsets_are_stored_with_it(self):
        store, group = await self.make_store(), f"g-{uuid.uuid4().hex[:6]}"
        report = reported()
        await store.write_batch(batch_of(report, fact(ev.NoteAdded, report.incident_id, text="t"), first_offset=10), group)
        assert await store.stored_offsets(group, [TOPIC]) == {(TOPIC, 0): 12}
        assert await store.stored_offsets(f"{group}-other", [TOPIC]) == {}

    async def test_a_fact_is_applied_once_however_often_it_is_written(self):
        store, group = await self.make_store(), f"g-{uuid.uuid4().hex[:6]}"
        report = reported()
        first = await store.write_batch(batch_of(report), group)
        again = await store.write_batch(batch_of(report, first_offset=1), group)
        assert first.applied == {"IncidentReported": 1} and [f.event_id for f in first.facts] == [report.event_id]
        assert sum(again.applied.values()) == 0 and again.facts == []
        assert await store.stored_offsets(group, [TOPIC]) == {(TOPIC, 0): 2}

    async def test_a_reset_store_goes_on_writing(self):
        store, group = await self.make_store(), f"g-{uuid.uuid4().hex[:6]}"
        await store.write_batch(batch_of(reported()), group)
        await store.reset()
        written = await store.write_batch(batch_of(reported(), first_offset=1), group)
        assert written.applied == {"IncidentReported": 1}
