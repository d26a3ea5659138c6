"""The contract of intake's idempotency store (services.intake.ports.IdempotencyStorePort),
in the pattern of the eventsourcing library's persistence suites: one base class of tests,
run against the fake (tests/unit/intake/test_store_contract.py) and, marked postgres,
against the real store (tests/integration/intake/test_idempotency_store.py). A subclass
only says how to make a store; if the fake drifts from the real store, one of the two fails."""

from __future__ import annotations

import uuid

from services.intake.repository import Accepted, Pending
from tests.support import wait_until


def accepted(offset: int = 0, **fields) -> Accepted:
    values = dict(event_id=uuid.uuid4(), incident_id=uuid.uuid4(), event_type="NoteAdded",
                  topic="incidents.events.v1", partition=2, offset=offset)
    return Accepted(**{**values, **fields})


class IdempotencyStoreContract:
    async def make_store(self):
        raise NotImplementedError

    async def test_an_event_id_never_recorded_is_not_found(self):
        store = await self.make_store()
        assert await store.lookup(uuid.uuid4()) is None
        assert await store.lookup_many([uuid.uuid4()]) == {}

    async def test_a_recorded_event_is_found_with_where_it_landed(self):
        store = await self.make_store()
        one = accepted(offset=41)
        await store.record(one)
        assert await store.lookup(one.event_id) == one

    async def test_the_first_record_of_an_event_id_is_the_one_kept(self):
        store = await self.make_store()
        first = accepted(offset=1)
        await store.record(first)
        await store.record(first._replace(offset=99))
        assert await store.lookup(first.event_id) == first

    async def test_lookup_many_answers_only_the_ids_it_holds(self):
        store = await self.make_store()
        held = [accepted(offset=i) for i in range(3)]
        await store.record_many(held)
        missing = uuid.uuid4()
        assert await store.lookup_many([*(a.event_id for a in held), missing]) == {a.event_id: a for a in held}

    async def test_a_record_soon_is_found_shortly_after(self):
        store = await self.make_store()
        soon = accepted(offset=7)
        store.record_soon(soon)

        async def found() -> bool:
            return await store.lookup(soon.event_id) == soon

        await wait_until(found, 10, what="the write-behind record")

    async def test_a_first_claim_is_made_and_a_second_finds_it_until_the_record_settles_it(self):
        store = await self.make_store()
        event_id = uuid.uuid4()
        assert await store.claim(event_id, "op-17", b"d1") is None
        again = await store.claim(event_id, "op-17", b"d2")
        assert isinstance(again, Pending)
        assert (again.event_id, again.subject, again.digest, again.owner) == (event_id, "op-17", b"d1", store.owner)
        done = accepted(event_id=event_id, subject="op-17", digest=b"d1")
        await store.record(done)
        assert await store.claim(event_id, "op-17", b"d1") == done

    async def test_claim_many_answers_the_recorded_and_the_claimed_and_claims_the_rest(self):
        store = await self.make_store()
        recorded, claimed, fresh = accepted(offset=3), uuid.uuid4(), uuid.uuid4()
        await store.record(recorded)
        assert await store.claim(claimed, None, None) is None
        found = await store.claim_many([(recorded.event_id, None, None), (claimed, None, None), (fresh, None, None)])
        assert found[recorded.event_id] == recorded
        assert isinstance(found[claimed], Pending) and fresh not in found
        assert isinstance(await store.claim(fresh, None, None), Pending)

    async def test_a_claim_taken_over_once_cannot_be_taken_over_again_from_the_same_reading(self):
        store = await self.make_store()
        event_id = uuid.uuid4()
        await store.claim(event_id, "op-17", None)
        read = await store.claim(event_id, "op-17", None)
        assert await store.take_over(read) is True
        assert await store.take_over(read) is False  # it changed (its time) since it was read
        assert (await store.claim(event_id, "op-17", None)).owner == store.owner

    async def test_a_released_claim_is_gone_and_the_next_claim_is_a_first_one(self):
        store = await self.make_store()
        event_id = uuid.uuid4()
        await store.claim(event_id, None, None)
        await store.release([event_id])
        assert await store.claim(event_id, None, None) is None

    async def test_a_store_that_answers_pings_true(self):
        store = await self.make_store()
        assert await store.ping() is True


class RegistryContract:
    """The incident registry half of the store: mixed into the same suite's classes."""

    async def test_a_report_registers_its_incident_and_a_change_applies_to_it(self):
        from services.intake.registry import Change, IncidentRecord
        from services.intake.repository import Written

        store = await self.make_store()
        record = IncidentRecord(incident_id=uuid.uuid4(), reporter="op-17", reporting_agency="council",
                                source_kind="control_room", source_id="op-17", agencies_required=("fire",),
                                mode="live", classification="OFFICIAL")
        assert await store.incident(record.incident_id) is None
        await store.record(Written(accepted(), report=record))
        assert await store.incident(record.incident_id) == record
        change = Change(record.incident_id, add_agencies=("police",), remove_agencies=("fire",),
                        classification="OFFICIAL-SENSITIVE", terminal=True)
        await store.record(Written(accepted(offset=1), change=change))
        found = (await store.incidents([record.incident_id, uuid.uuid4()]))[record.incident_id]
        assert (set(found.agencies_required), found.classification, found.terminal) == (
            {"police"}, "OFFICIAL-SENSITIVE", True)
