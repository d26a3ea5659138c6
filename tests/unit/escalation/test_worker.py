"""The escalation worker's send-then-write order with fakes of its sender and state store
(tests/fakes.py, each passing its adapter's contract): no broker. Outputs are acknowledged
before the states record them, so a crash or a refusal in between replays the facts and
sends the same event ids again, never loses one; facts the stored state holds are skipped."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka.errors import KafkaTimeoutError

from services.escalation import batch
from services.escalation.app import build
from services.escalation.state import fold
from services.shared import events as ev
from services.shared.settings import Settings
from tests.fakes import FakeStateStore, RecordingSink
from tests.support import wait_until
from tests.unit.escalation.helpers import DEFAULT_RULES, POPLAR, poplar_fire

PARTITION = 4


@pytest.fixture
def worker(tmp_path):
    escalation = build(Settings(home=tmp_path), DEFAULT_RULES)  # connects to nothing
    escalation.sink, escalation.store = RecordingSink(), FakeStateStore()
    return escalation


def fire():
    """A fire that escalates at once (no coordinates: nothing to corroborate first)."""
    return poplar_fire(location=ev.Location(ward_code=POPLAR, address="Chrisp Street Market"))


def facts_of(report, offset: int = 7) -> list[batch.Input]:
    return [batch.Input(str(report.incident_id), lambda s: fold(s, report, PARTITION, offset), offset, report)]


def event_ids(records) -> set[str]:
    return {json.loads(r.value)["event_id"] for r in records}


async def test_a_batch_s_outputs_are_acknowledged_before_its_states_are_written(worker):
    report = fire()
    worker.sink.gate = asyncio.Event()
    running = asyncio.create_task(worker.process(facts_of(report), PARTITION))
    await wait_until(lambda: worker.sink.handed, what="the batch's outputs handed to the producer")
    assert len(worker.store) == 0 and worker.store.changelog == []
    worker.sink.gate.set()
    await running
    agencies = {r.topic for r in worker.sink.sent} & {worker.catalog.name("escalations.fire")}
    assert agencies and len(worker.sink.sent) == len(worker.sink.handed)
    key = str(report.incident_id).encode()
    assert worker.store.recovered()[key][1] == PARTITION


async def test_outputs_the_broker_refused_leave_no_state_so_the_replay_sends_the_same_events(worker):
    report = fire()
    worker.sink.failure = KafkaTimeoutError()
    with pytest.raises(KafkaTimeoutError):
        await worker.process(facts_of(report), PARTITION)
    refused = event_ids(worker.sink.handed)
    assert refused and worker.sink.sent == [] and len(worker.store) == 0
    worker.sink.failure, worker.sink.handed = None, []
    await worker.process(facts_of(report), PARTITION)  # the agent's retry, or the replay after a restart
    assert event_ids(worker.sink.sent) == refused
    assert str(report.incident_id).encode() in worker.store.recovered()


async def test_a_fact_the_stored_state_holds_is_skipped_and_sends_nothing_again(worker):
    report = fire()
    await worker.process(facts_of(report), PARTITION)
    sent, changelog = len(worker.sink.sent), list(worker.store.changelog)
    assert sent > 0
    worker.cache.clear()  # as after a rebalance: the state is read back from the store
    await worker.process(facts_of(report), PARTITION)
    assert (len(worker.sink.handed), worker.store.changelog) == (sent, changelog)


async def test_a_changelog_that_refuses_the_states_fails_the_batch(worker):
    worker.store.failure = KafkaTimeoutError()
    with pytest.raises(KafkaTimeoutError):
        await worker.process(facts_of(fire()), PARTITION)
    assert worker.sink.sent and worker.store.recovered() == {}
