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


class _Keys:
    """The key service as intake sees it (the real one: tests/integration/people)."""

    def __init__(self, erased: frozenset = frozenset()) -> None:
        self.held: dict = {}
        self.erased = erased

    async def keys_for_sealing(self, incident_ids):
        from services.shared import keys, sealing

        if gone := [i for i in incident_ids if i in self.erased]:
            raise keys.PeopleErased(gone)
        return {i: self.held.setdefault(i, sealing.new_key()) for i in incident_ids}


def _with_people() -> ev.IncidentUpdated:
    return fact(ev.IncidentUpdated, INCIDENT.incident_id, people=(ev.Person(role="victim", name="Pat Example"),))


async def test_people_are_published_sealed_and_a_fact_without_people_needs_no_key():
    from services.shared import sealing

    publisher, key_service = FakePublisher(), _Keys()
    intake = IntakeService(publisher, _store(), IntakeMetrics(), timeout_s=2.0, keys=key_service)
    event = _with_people()
    await intake.submit(event, CALLER)
    await intake.submit(note(), CALLER)
    [published, plain_note] = publisher.published
    assert published.event_id == event.event_id and "Pat" not in published.model_dump_json()
    key = key_service.held[INCIDENT.incident_id]
    assert published.people is None
    assert sealing.open_people(key, INCIDENT.incident_id, published.people_sealed) == [
        {"role": "victim", "name": "Pat Example"}]
    assert plain_note.event_type == "NoteAdded"
    assert list(key_service.held) == [INCIDENT.incident_id]


async def test_people_for_an_erased_incident_are_409_and_without_a_key_service_503_never_published():
    from services.intake.validation import Rejection

    publisher = FakePublisher()
    erased = IntakeService(publisher, _store(), IntakeMetrics(), timeout_s=2.0,
                           keys=_Keys(erased=frozenset({INCIDENT.incident_id})))
    with pytest.raises(Rejection) as refused:
        await erased.submit(_with_people(), CALLER)
    assert refused.value.status == 409 and refused.value.problems[0][0] == "people"
    with pytest.raises(Unavailable, match="people"):
        await service(publisher).submit(_with_people(), CALLER)
    assert publisher.published == []


def _store() -> FakeIdempotencyStore:
    store = FakeIdempotencyStore()
    store.registry[INCIDENT.incident_id] = record_of(INCIDENT, CALLER.subject)
    return store


async def test_a_batch_while_the_broker_never_answered_is_503_and_nothing_is_recorded():
    store = FakeIdempotencyStore()
    publisher = FakePublisher(connected=False)
    with pytest.raises(Unavailable, match="not connected"):
        await service(publisher, store).submit_batch([note(), note()], CALLER)
    assert publisher.published == [] and store.rows == {}


async def test_a_report_published_while_the_store_is_away_is_recorded_when_it_is_back_and_known_meanwhile():
    """Found by the soak (cut(intake-postgres)): a report intake published and answered 202 while
    PostgreSQL was cut never got its registry record, so the incident's next facts were refused
    as unknown ("lead_incident_id: no such incident", or 404). Its record is kept and written
    again until the store takes it, and registry look-ups see it meanwhile."""
    store, publisher = FakeIdempotencyStore(), FakePublisher()
    intake = service(publisher, store)
    report = reported()
    store.available = False
    accepted = await intake.submit(report, CALLER, fresh=True)  # no look-up: intake minted its id
    assert accepted.incident_id == report.incident_id and report.incident_id not in store.registry
    store.available = True  # back before the retry's back-off: the look-up alone must know it
    update = fact(ev.NoteAdded, report.incident_id, text="crew on scene")
    assert (await intake.submit(update, CALLER)).incident_id == report.incident_id
    link = fact(ev.IncidentLinked, INCIDENT.incident_id, lead_incident_id=report.incident_id, reason="same fire")
    assert (await intake.submit(link, CALLER)).incident_id == INCIDENT.incident_id
    async with asyncio.timeout(5):
        while report.incident_id not in store.registry:
            await asyncio.sleep(0.05)  # the retry's back-off: a condition awaited, bounded
    assert store.registry[report.incident_id] == record_of(report, CALLER.subject)
    assert accepted.event_id in store.rows
    await intake.drain()


async def test_a_single_record_the_database_lost_before_its_flush_is_written_again_and_known_meanwhile():
    """A single request's record commits without waiting for the WAL flush (the fsync held every
    single request 50-160 ms behind it while the disk was busy: the p99 at 500 req/s). A database
    that restarts before the flush loses it: the service asks the store until it is confirmed, and
    writes what was lost again; registry look-ups know the report meanwhile."""
    store, publisher = FakeIdempotencyStore(), FakePublisher()
    intake = service(publisher, store)
    report = reported()
    store.available = False  # the database restarts: the commit is lost before its flush
    intake._store = _Losing(store)
    accepted = await intake.submit(report, CALLER, fresh=True)
    assert report.incident_id not in store.registry  # lost
    update = fact(ev.NoteAdded, report.incident_id, text="crew on scene")
    store.available = True
    assert (await intake.submit(update, CALLER)).incident_id == report.incident_id  # known meanwhile
    async with asyncio.timeout(5):
        while report.incident_id not in store.registry:
            await asyncio.sleep(0.05)  # the confirmation's back-off: a condition awaited, bounded
    assert store.registry[report.incident_id] == record_of(report, CALLER.subject)
    assert store.rows[accepted.event_id] == accepted
    await intake.drain()
    assert intake._unconfirmed == [] and intake._unconfirmed_reports == {}


class _Losing:
    """The store whose commits of single records are lost (a restart before the flush) while it is away:
    `record` succeeds, nothing is kept; `confirm` cannot answer until it is back."""

    def __init__(self, store: FakeIdempotencyStore) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def record(self, written) -> None:
        if self._store.available:
            await self._store.record(written)


async def test_a_single_record_is_confirmed_and_forgotten_once_durable():
    store, publisher = FakeIdempotencyStore(), FakePublisher()
    intake = service(publisher, store)
    report = reported()
    await intake.submit(report, CALLER, fresh=True)
    assert report.incident_id in store.registry
    await intake.drain()  # the confirmation runs to its end
    assert intake._unconfirmed == [] and intake._unconfirmed_reports == {} and intake._unrecorded == []


async def test_one_event_id_twice_in_a_batch_with_another_payload_is_409_and_the_first_is_published():
    """The second item is not the first's replay: 409 naming event_id (it was answered as accepted,
    with the first item's result; found by the red-team probes of 2026-12-03). The same payload twice
    is one event, and both items hear its result; the first item's claim is kept."""
    publisher, store = FakePublisher(), FakeIdempotencyStore()
    intake, first = service(publisher, store), note()
    other = first.model_copy(update={"text": "another text"})
    results = await intake.submit_batch([first, other, first], CALLER, digests=[b"one", b"two", b"one"])
    assert results[0].accepted is not None and results[2].accepted == results[0].accepted
    assert results[1].accepted is None and results[1].rejection.status == 409
    assert "events.1.event_id" in results[1].rejection.detail and "different payload" in results[1].rejection.detail
    assert publisher.published == [first]
