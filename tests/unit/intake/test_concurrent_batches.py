"""Concurrent batches in one intake process (fakes of the broker and the database): a batch
holds a turn only for its checks, never while it waits for the broker or PostgreSQL, and the
first-report rule still holds across batches that report the same incident at once, also when
one's registry look-up read the registry before the other's record was written."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.intake.metrics import IntakeMetrics
from services.intake.service import BATCH_TURNS, Holds, IntakeService
from services.intake.validation import Rejection
from services.shared.auth import Principal, Role
from services.shared.events import Agency
from services.shared import events as ev
from tests.factories import fact, reported
from tests.fakes import FakeIdempotencyStore, FakePublisher

CALLER = Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)


def service(publisher: FakePublisher, store: FakeIdempotencyStore) -> IntakeService:
    return IntakeService(publisher, store, IntakeMetrics(), timeout_s=2.0)


def statuses(results) -> list:
    return [r.rejection.status if r.rejection else "accepted" for r in results]


class CountingPublisher(FakePublisher):
    """Counts the batches waiting for the broker's acknowledgement (behind `gate`)."""

    def __init__(self, waiting_for: int) -> None:
        super().__init__(gate=asyncio.Event())
        self.waiting = 0
        self.all_waiting = asyncio.Event()
        self.waiting_for = waiting_for

    async def publish_batch(self, events: list) -> list:
        self.waiting += 1
        if self.waiting == self.waiting_for:
            self.all_waiting.set()
        return await super().publish_batch(events)


async def test_more_batches_than_turns_wait_for_the_broker_at_once():
    count = BATCH_TURNS + 2
    publisher, store = CountingPublisher(waiting_for=count), FakeIdempotencyStore()
    intake = service(publisher, store)
    batches = [asyncio.create_task(intake.submit_batch([reported(), reported()], CALLER)) for _ in range(count)]
    async with asyncio.timeout(2):
        await publisher.all_waiting.wait()  # none holds a turn while it waits for the broker
    publisher.gate.set()
    assert [statuses(r) for r in await asyncio.gather(*batches)] == [["accepted", "accepted"]] * count


async def test_two_batches_reporting_the_same_incident_at_once_give_one_acceptance_and_one_409():
    publisher, store = FakePublisher(gate=asyncio.Event()), FakeIdempotencyStore()
    intake = service(publisher, store)
    incident = uuid.uuid4()
    first = asyncio.create_task(intake.submit_batch([reported(incident_id=incident), reported()], CALLER))
    second = asyncio.create_task(intake.submit_batch([reported(incident_id=incident)], CALLER))
    done, _ = await asyncio.wait({second}, timeout=2)  # refused while the first waits for the broker
    assert second in done
    publisher.gate.set()
    assert statuses(await first) == ["accepted", "accepted"]
    assert statuses(await second) == [409]
    assert [e.incident_id for e in publisher.published].count(incident) == 1


class SlowLookUpStore(FakeIdempotencyStore):
    """A registry look-up that reads the registry when asked but answers only when `answer` is
    set: as a PostgreSQL statement whose snapshot predates another transaction's commit."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: asyncio.Event | None = None
        self.read = asyncio.Event()

    async def incidents(self, incident_ids):
        found = await super().incidents(incident_ids)
        if self.answer is not None:
            answer, self.answer = self.answer, None
            self.read.set()
            await answer.wait()
        return found


async def test_the_report_that_claimed_its_incident_first_is_accepted_however_late_its_look_up_answers():
    """Each report claims its incident in the statement that claims its event_id (the store
    decides, for every intake process): a report whose batch's registry look-up lags (it looks up
    the incident its other fact names) still holds the incident, and one sent meanwhile is 409, as
    is one sent after its record."""
    store, publisher = SlowLookUpStore(), FakePublisher()
    intake = service(publisher, store)
    incident, unknown = uuid.uuid4(), uuid.uuid4()
    store.answer = answer = asyncio.Event()
    note = fact(ev.NoteAdded, unknown, text="seen again")
    first = asyncio.create_task(intake.submit_batch([reported(incident_id=incident), note], CALLER))
    await store.read.wait()  # it claimed the incident; its look-up read the registry: the incident is not there
    meanwhile = await intake.submit_batch([reported(incident_id=incident)], CALLER)
    assert statuses(meanwhile) == [409] and incident not in store.registry
    answer.set()
    assert statuses(await first) == ["accepted", 404] and incident in store.registry
    assert [e.incident_id for e in publisher.published].count(incident) == 1
    assert incident not in intake._holds  # let go once its look-up was over
    again = await intake.submit_batch([reported(incident_id=incident)], CALLER)
    assert statuses(again) == [409]  # from the registry now


async def test_a_report_the_broker_did_not_take_lets_its_incident_go_at_once():
    from services.intake.publisher import BrokerUnavailable

    publisher, store = FakePublisher(failure=BrokerUnavailable("no ack")), FakeIdempotencyStore()
    intake = service(publisher, store)
    event = reported()
    reader = intake._holds.open()  # a look-up in flight elsewhere does not keep a failed report held
    with pytest.raises(Exception, match="no ack"):
        await intake.submit_batch([event], CALLER)
    assert event.incident_id not in intake._holds
    intake._holds.close(reader)
    publisher.failure = None
    assert statuses(await intake.submit_batch([event], CALLER)) == ["accepted"]  # the retry is no second report


def test_a_settled_report_waits_for_every_look_up_open_then_and_no_later_one():
    reports, incident = Holds(), uuid.uuid4()
    before = reports.open()
    reports.hold(incident)
    also_before = reports.open()
    reports.settle([incident])
    after = reports.open()
    reports.close(before)
    assert incident in reports
    reports.close(after)
    assert incident in reports
    reports.close(also_before)
    assert incident not in reports
    reports.hold(incident)  # free again: the next report of it is checked against the registry
    with pytest.raises(Rejection):
        reports.hold(incident)


def test_facts_that_read_and_change_state_hold_it_as_readers_and_writers():
    """guard.state_held through Holds: a change conflicts with what others read, a read with what
    others change; readers side by side never conflict (two declarations), nor two closes."""
    import collections

    from services.intake import guard
    from services.intake.validation import Rejection

    holds, x, y, z = Holds(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def link(a, b):
        return holds.hold_state((("linked", a), ("linked", b)), (("linked", a),))

    def declare(a):
        return holds.hold_state((("finished", a), ("linked", a)), ())

    def close(a):
        return holds.hold_state((), (("finished", a),))

    link_xy = link(x, y)
    with pytest.raises(Rejection) as refused:
        link(y, x)  # the reverse link: it links y, whose linkage x->y read
    assert refused.value.status == 409 and refused.value.problems[0][0] == "incident_id"
    with pytest.raises(Rejection):
        link(x, z)  # a second lead for x
    link_zy, close_y = link(z, y), close(y)  # another duplicate of the same lead; closing the lead
    with pytest.raises(Rejection):
        declare(x)  # x is being linked: a duplicate is not declared on
    for keys in (link_xy, link_zy, close_y):
        holds.release(keys)
    declare_y, again = declare(y), declare(y)
    with pytest.raises(Rejection):
        close(y)  # a close beside its declarations
    holds.release(declare_y)
    holds.release(again)
    first_close, second_close = close(y), close(y)
    mine = collections.Counter(first_close + second_close)
    assert holds.hold_state((("finished", y),), (), mine=mine)  # the same batch's later item: its own view
    assert guard.state_held(ev_status(x, "on_scene")) is None  # a status that finishes nothing holds nothing


def ev_status(incident_id, status):
    from datetime import datetime, timezone

    from services.shared import events as ev

    at = datetime(2026, 11, 20, tzinfo=timezone.utc)
    return ev.IncidentStatusChanged(event_id=uuid.uuid4(), occurred_at=at, recorded_at=at, incident_id=incident_id,
                                    source=ev.Source(kind="control_room", id="op-17"), status=status)
