"""An intake process killed between the broker's acknowledgement and its idempotency record
(found by `muster chaos`: the client's retry reached the restarted intake, which published the
event a second time). Each event_id is claimed before it is published; a retry that finds a
claim with no record looks for the event on the topic. Fakes of the store and the publisher
(their contract suites run against the real ones too)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.intake.metrics import IntakeMetrics
from services.intake.registry import record_of
from services.intake.service import CLAIM_BOUNDS, IntakeService, Unavailable
from services.intake.validation import Rejection
from services.shared import events as ev
from services.shared.auth import Principal, Role
from services.shared.events import Agency
from tests.factories import fact, reported
from tests.fakes import FakeIdempotencyStore, FakePublisher

CALLER = Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)
INCIDENT = reported()
TIMEOUT_S = 2.0


def process(publisher: FakePublisher, shared: FakeIdempotencyStore | None = None) -> IntakeService:
    """One intake process: its own owner id, the database (the store's tables) shared."""
    store = FakeIdempotencyStore()
    if shared is not None:
        store.sharing(shared)
    store.registry.setdefault(INCIDENT.incident_id, record_of(INCIDENT, CALLER.subject))
    return IntakeService(publisher, store, IntakeMetrics(), timeout_s=TIMEOUT_S)


def note() -> ev.NoteAdded:
    return fact(ev.NoteAdded, INCIDENT.incident_id, text="seen from the control room")


async def killed_after_the_ack(intake: IntakeService, event: ev.IncidentEvent):
    """What the killed process did: it claimed the event and the broker acknowledged it; no record."""
    assert await intake._store.claim(event.event_id, CALLER.subject, None) is None
    [landed] = await intake._publisher.publish([event])
    assert not isinstance(landed, BaseException)
    return landed


def older(store: FakeIdempotencyStore, event_id: uuid.UUID, seconds: float) -> None:
    claim = store.claims[event_id]
    store.claims[event_id] = claim._replace(since=claim.since - timedelta(seconds=seconds))


async def test_the_retry_after_a_crash_past_the_ack_answers_where_it_landed_and_publishes_no_second_copy():
    publisher = FakePublisher()
    dead = process(publisher)
    event = note()
    landed = await killed_after_the_ack(dead, event)
    restarted = process(publisher, dead._store)
    accepted = await restarted.submit(event, CALLER)
    assert publisher.published == [event]
    assert (accepted.event_id, accepted.partition, accepted.offset) == (event.event_id, landed.partition, landed.offset)
    assert await restarted._store.lookup(event.event_id) == accepted
    assert event.event_id not in restarted._store.claims
    assert await restarted.submit(event, CALLER) == accepted  # and the next retry is a plain replay


async def test_the_same_in_a_batch():
    publisher = FakePublisher()
    dead = process(publisher)
    crashed, other = note(), note()
    await killed_after_the_ack(dead, crashed)
    restarted = process(publisher, dead._store)
    results = await restarted.submit_batch([crashed, other], CALLER)
    assert [r.accepted.event_id for r in results] == [crashed.event_id, other.event_id]
    assert publisher.published == [crashed, other]


async def test_a_claim_whose_event_never_reached_the_broker_is_published_once_its_bound_has_passed():
    publisher = FakePublisher()
    dead = process(publisher)
    event = note()
    await dead._store.claim(event.event_id, CALLER.subject, None)
    restarted = process(publisher, dead._store)
    with pytest.raises(Unavailable, match="being published"):  # it may still be in flight in the other process
        await restarted.submit(event, CALLER)
    assert publisher.published == []
    older(restarted._store, event.event_id, CLAIM_BOUNDS * TIMEOUT_S + 1)
    accepted = await restarted.submit(event, CALLER)
    assert publisher.published == [event] and accepted.event_id == event.event_id


async def test_a_claim_of_this_process_s_own_earlier_attempt_is_published_without_waiting():
    publisher = FakePublisher()
    intake = process(publisher)
    event = note()
    await intake._store.claim(event.event_id, CALLER.subject, None)
    accepted = await intake.submit(event, CALLER)
    assert publisher.published == [event] and accepted.event_id == event.event_id


async def test_a_refused_event_gives_its_claim_up_and_the_retry_is_refused_afresh():
    publisher = FakePublisher()
    intake = process(publisher)
    unknown = fact(ev.NoteAdded, uuid.uuid4(), text="about an incident nobody reported")
    for _ in range(2):
        with pytest.raises(Rejection) as refused:
            await intake.submit(unknown, CALLER)
        assert refused.value.status == 404
        assert unknown.event_id not in intake._store.claims
    assert publisher.published == []


async def test_another_caller_cannot_take_over_a_claim():
    publisher = FakePublisher()
    dead = process(publisher)
    event = note()
    await killed_after_the_ack(dead, event)
    restarted = process(publisher, dead._store)
    intruder = Principal("op-99", Role.CONTROL_ROOM, Agency.COUNCIL)
    with pytest.raises(Rejection) as refused:
        await restarted.submit(event, intruder)
    assert refused.value.status == 409
    assert publisher.published == [event]


async def test_a_batch_retried_after_its_publish_timed_out_looks_for_all_its_events_in_one_read():
    """Found by `muster chaos` (the soak's broker kill): every item of such a retry holds this
    process's own claim, and each was looked for on the topic one after the other, each read with a
    consumer of its own, so the request outlasted the 12 s bound a partner allows it."""
    publisher = FakePublisher()
    intake = process(publisher)
    timed_out = [note() for _ in range(30)]
    for event in timed_out:  # claimed; the broker never acknowledged within the bound
        assert await intake._store.claim(event.event_id, CALLER.subject, None) is None
    results = await intake.submit_batch(timed_out, CALLER)
    assert all(r.accepted is not None for r in results)
    assert publisher.searches == [[e.event_id for e in timed_out]]  # one search, for all of them
    assert publisher.published == timed_out


async def test_a_batch_whose_search_the_broker_cannot_answer_answers_503_for_those_items_only():
    publisher = FakePublisher()
    intake = process(publisher)
    timed_out, fresh = note(), note()
    assert await intake._store.claim(timed_out.event_id, CALLER.subject, None) is None

    async def unreachable(wanted, timeout_s=None):
        raise publisher._unavailable()

    publisher.find_many = unreachable
    results = await intake.submit_batch([timed_out, fresh], CALLER)
    assert results[0].rejection is not None and results[0].rejection.status == 503
    assert results[1].accepted is not None and publisher.published == [fresh]
