"""IntakeService with fakes of its publisher and idempotency store: the in-flight and
late-acknowledgement paths, no broker and no database."""

from __future__ import annotations

import asyncio

import pytest

from services.intake.metrics import IntakeMetrics
from services.intake.registry import record_of
from services.intake.publisher import BrokerUnavailable
from services.intake.service import IntakeService, Unavailable
from services.shared import events as ev
from services.shared.auth import Principal, Role
from services.shared.events import Agency
from tests.factories import fact, reported
from tests.fakes import FakeIdempotencyStore, FakePublisher


CALLER = Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)
INCIDENT = reported()


def service(publisher: FakePublisher, store: FakeIdempotencyStore | None = None) -> IntakeService:
    store = store or FakeIdempotencyStore()
    store.registry[INCIDENT.incident_id] = record_of(INCIDENT, CALLER.subject)  # the note's incident is known
    return IntakeService(publisher, store, IntakeMetrics(), timeout_s=2.0)


def note() -> ev.NoteAdded:
    return fact(ev.NoteAdded, INCIDENT.incident_id, text="seen from the control room")


async def test_the_same_event_id_sent_twice_at_once_is_published_once_and_both_hear_its_result():
    publisher = FakePublisher(gate=asyncio.Event())
    intake, event = service(publisher), note()
    first = asyncio.create_task(intake.submit(event, CALLER))
    second = asyncio.create_task(intake.submit(event, CALLER))
    await asyncio.sleep(0)  # both are in: the second waits on the first's publish
    publisher.gate.set()
    assert await first == await second
    assert publisher.published == [event]


async def test_a_retry_after_the_first_finished_returns_the_recorded_result_without_publishing():
    publisher = FakePublisher()
    intake, event = service(publisher), note()
    original = await intake.submit(event, CALLER)
    assert await intake.submit(event, CALLER) == original
    assert len(publisher.published) == 1


async def test_a_broker_that_does_not_answer_in_time_is_503_and_its_late_ack_answers_the_retry():
    store = FakeIdempotencyStore()
    publisher = FakePublisher(failure=BrokerUnavailable("broker did not acknowledge within 2s"), late=True)
    intake = service(publisher, store)
    publisher.on_late_ack = intake.on_late_ack
    event = note()
    with pytest.raises(Unavailable, match="did not acknowledge"):
        await intake.submit(event, CALLER)
    await asyncio.sleep(0)  # the late acknowledgement arrives
    await intake.drain()
    publisher.failure = None  # the broker is back; the retry must not publish a second copy
    retried = await intake.submit(event, CALLER)
    assert retried.event_id == event.event_id and len(publisher.published) == 1
    assert await store.lookup(event.event_id) == retried


async def test_an_idempotency_store_that_is_down_is_503_before_anything_is_published():
    store = FakeIdempotencyStore()
    store.available = False
    publisher = FakePublisher()
    with pytest.raises(Unavailable, match="idempotency store did not answer"):
        await service(publisher, store).submit(note(), CALLER)
    assert publisher.published == []


async def test_a_batch_while_the_broker_never_answered_is_503_and_nothing_is_recorded():
    store = FakeIdempotencyStore()
    publisher = FakePublisher(connected=False)
    with pytest.raises(Unavailable, match="not connected"):
        await service(publisher, store).submit_batch([note(), note()], CALLER)
    assert publisher.published == [] and store.rows == {}
