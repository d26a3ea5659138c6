"""The contract of intake's idempotency store (services.intake.ports.IdempotencyStorePort),
in the pattern of the eventsourcing library's persistence suites: one base class of tests,
run against the fake (tests/unit/intake/test_store_contract.py) and, marked postgres,
against the real store (tests/integration/intake/test_idempotency_store.py). A subclass
only says how to make a store; if the fake drifts from the real store, one of the two fails."""

from __future__ import annotations

import uuid

from services.intake.repository import Accepted, Pending, Written
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

    async def test_a_claim_of_an_id_recorded_soon_but_not_yet_written_is_its_replay(self):
        """The write-behind row's event was answered, its id told: claimed meanwhile (a batch naming
        it with another payload), it was a first claim and another event went out under the id."""
        store = await self.make_store()
        soon = accepted(offset=3, subject="op-17", digest=b"s" * 16)
        store.record_soon(soon)
        assert await store.claim(soon.event_id, "op-17", b"t" * 16) == soon
        assert (await store.claim_many([(soon.event_id, "op-17", b"t" * 16, None)]))[soon.event_id] == soon

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

    async def test_confirm_names_only_the_records_the_store_does_not_hold(self):
        store = await self.make_store()
        kept, lost = Written(accepted(offset=3)), Written(accepted(offset=4))
        await store.record(kept)  # committed; `confirm` returns once it is durable too
        assert await store.confirm([kept, lost]) == [lost]
        assert await store.confirm([kept]) == [] and await store.lookup(kept.accepted.event_id) == kept.accepted

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
        found = await store.claim_many([(recorded.event_id, None, None, None), (claimed, None, None, None),
                                        (fresh, None, None, None)])
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


class IncidentClaimContract:
    """A report claims its incident with its event_id (the first report is the only report, across
    intake processes): mixed into the same suite's classes."""

    @staticmethod
    def record(incident_id: uuid.UUID, reporter: str = "op-17", agencies_required: tuple = ()):
        from services.intake.registry import IncidentRecord

        return IncidentRecord(incident_id=incident_id, reporter=reporter, reporting_agency="council",
                              source_kind="control_room", source_id=reporter, agencies_required=agencies_required,
                              mode="live", classification="OFFICIAL")

    async def test_a_report_whose_claim_wrote_its_record_is_settled_by_its_idempotency_row(self):
        from services.intake.registry import Change
        from services.intake.repository import Reported, Written

        store, other = await self.make_store(), await self.make_store()
        incident, first = uuid.uuid4(), uuid.uuid4()
        claimed = self.record(incident, agencies_required=("police",))
        assert await store.claim(first, "op-17", None, claimed) is None
        assert await other.incident(incident) is None  # claimed, with its record: still no record
        held = await other.claim(uuid.uuid4(), "op-18", None, self.record(incident))
        assert isinstance(held, Reported) and held.owner == store.owner
        report = Written(accepted(event_id=first, incident_id=incident, event_type="IncidentReported"),
                         report=claimed, registered=True)
        change = Written(accepted(incident_id=incident), change=Change(incident, add_agencies=("ambulance",)))
        await store.record_many([report, change])  # a later fact in the same write applies to it
        found = await other.incident(incident)
        assert (found._replace(agencies_required=()), set(found.agencies_required)) == (
            claimed._replace(agencies_required=()), {"ambulance", "police"})
        settled = await other.claim(uuid.uuid4(), "op-18", None, self.record(incident))
        assert isinstance(settled, Reported) and (settled.event_id, settled.owner) == (first, None)
        assert await other.take_over_report(held, uuid.uuid4()) is False  # a recorded report's claim is no claim

    async def test_a_report_that_took_its_incident_over_is_recorded_with_its_own_record(self):
        from services.intake.repository import Written

        store, other = await self.make_store(), await self.make_store()
        incident, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await store.claim(first, "op-17", None, self.record(incident))  # its writer then died
        held = await other.claim(second, "op-18", None, self.record(incident, reporter="op-18"))
        assert await other.take_over_report(held, second) is True
        assert await other.incident(incident) is None
        await other.record(Written(accepted(event_id=second, incident_id=incident, event_type="IncidentReported"),
                                   report=self.record(incident, reporter="op-18")))
        assert await store.incident(incident) == self.record(incident, reporter="op-18")

    async def test_a_second_report_finds_the_incident_held_by_the_first_until_its_record_settles_it(self):
        from services.intake.repository import Reported, Written

        store, other = await self.make_store(), await self.make_store()  # two intake processes
        incident, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        assert await store.claim(first, "op-17", None, self.record(incident)) is None
        held = await other.claim(second, "op-18", None, self.record(incident))
        assert isinstance(held, Reported) and (held.incident_id, held.event_id, held.owner) == (
            incident, first, store.owner)
        assert await other.incident(incident) is None  # a claim is no record: facts about it are still 404
        assert await store.claim(first, "op-17", None, self.record(incident)) is not None  # its own retry: its earlier claim
        await store.record(Written(accepted(event_id=first, incident_id=incident, event_type="IncidentReported"),
                                   report=self.record(incident)))
        assert await other.incident(incident) == self.record(incident)
        settled = await other.claim(uuid.uuid4(), "op-18", None, self.record(incident))
        assert isinstance(settled, Reported) and (settled.event_id, settled.owner) == (first, None)

    async def test_a_refused_report_gives_its_incident_up_and_another_event_then_claims_it(self):
        store, other = await self.make_store(), await self.make_store()
        incident, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await store.claim(first, "op-17", None, self.record(incident))
        await other.release([first], [incident])  # not other's claim: nothing given up
        assert await other.claim(second, "op-18", None, self.record(incident)) is not None
        await other.release([second], [incident])  # its event claim only: the incident is first's
        await store.release([first], [incident])
        assert await other.claim(second, "op-18", None, self.record(incident)) is None

    async def test_a_report_of_a_held_incident_says_whether_it_claimed_its_own_event_id_now(self):
        """A report refused as a second report gives up its event's claim only if it made it now: an
        event_id another attempt claimed (perhaps another caller's, in flight) is left as it is."""
        from services.intake.repository import Pending, Reported

        store = await self.make_store()
        incident, in_flight = uuid.uuid4(), uuid.uuid4()
        assert await store.claim(uuid.uuid4(), "op-17", None, self.record(incident)) is None
        assert await store.claim(in_flight, "op-17", None) is None  # another request's fact, in flight
        reused = await store.claim(in_flight, "op-18", None, self.record(incident, reporter="op-18"))
        assert isinstance(reused, Reported) and reused.claimed is False
        new = await store.claim(uuid.uuid4(), "op-18", None, self.record(incident, reporter="op-18"))
        assert isinstance(new, Reported) and new.claimed is True
        still = await store.claim(in_flight, "op-17", None)
        assert isinstance(still, Pending) and still.subject == "op-17"

    async def test_of_two_reports_of_one_incident_in_one_call_the_first_claims_it(self):
        from services.intake.repository import Reported

        store = await self.make_store()
        incident, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        found = await store.claim_many([(first, None, None, self.record(incident)), (second, None, None, self.record(incident)),
                                        (uuid.uuid4(), None, None, None)])
        assert list(found) == [second] and isinstance(found[second], Reported)
        assert (await store.claim(uuid.uuid4(), None, None, self.record(incident))).event_id == first

    async def test_a_claimed_incident_taken_over_once_cannot_be_taken_over_again_from_the_same_reading(self):
        store, other = await self.make_store(), await self.make_store()
        incident, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await store.claim(first, "op-17", None, self.record(incident))
        held = await other.claim(second, "op-18", None, self.record(incident))
        assert await other.take_over_report(held, second) is True
        assert await other.take_over_report(held, second) is False
        now = await store.claim(uuid.uuid4(), "op-19", None, self.record(incident))
        assert (now.event_id, now.owner) == (second, other.owner)


class CalendarContract:
    """The tension calendar's items: each its registering agency's, cancelled once recorded so."""

    async def test_a_calendar_item_is_its_first_callers_and_a_later_claim_reads_it_back(self):
        store = await self.make_store()
        item = uuid.uuid4()
        assert await store.calendar_item(item) is None
        made = await store.claim_calendar_item(item, "planned_event", "police", "analyst-1")
        assert (made.kind, made.agency, made.subject, made.cancelled) == ("planned_event", "police", "analyst-1", False)
        other = await self.make_store()  # another intake process, the same database
        assert await other.claim_calendar_item(item, "planned_event", "voluntary", "analyst-9") == made
        assert await other.calendar_item(item) == made

    async def test_a_recorded_cancellation_marks_its_item_and_settles_its_claim(self):
        store = await self.make_store()
        item, event_id = uuid.uuid4(), uuid.uuid4()
        await store.claim_calendar_item(item, "silence", "council", "op-17")
        assert await store.claim(event_id, "op-17", b"d" * 16) is None
        cancel = accepted(event_id=event_id, incident_id=item, event_type="PlannedEventCancelled", subject="op-17",
                          digest=b"d" * 16)
        await store.record_calendar(cancel, cancelled=item)
        assert (await store.calendar_item(item)).cancelled
        assert await store.claim(event_id, "op-17", b"d" * 16) == cancel
        kept = uuid.uuid4()
        await store.claim_calendar_item(kept, "planned_event", "council", "op-17")
        await store.record_calendar(accepted(incident_id=kept))
        assert not (await store.calendar_item(kept)).cancelled
