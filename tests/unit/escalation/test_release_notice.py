"""The deadline timer sends a finished incident's release notice once, not again every few
seconds while it waits behind a lagging agent (the soak's notices multiplied by the lag and the
escalation lag grew without end at 35 events/s); again after a rebalance, and after a send the
broker refused. With the fakes of the worker's sender and state store (tests/fakes.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aiokafka.errors import KafkaTimeoutError

from services.escalation import agents
from services.escalation.app import build
from services.shared import events as ev
from services.shared.settings import Settings
from tests.fakes import FakeStateStore, RecordingSink
from tests.unit.escalation.helpers import POPLAR, DEFAULT_RULES, fact, poplar_fire
from tests.unit.escalation.test_worker import PARTITION, facts_of

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Wall:
    """The wall clock the worker stamps `closed_at` with and judges releases by."""

    def __init__(self) -> None:
        self.at = ev.utcnow()

    def __call__(self):
        return self.at


@pytest.fixture
def worker(tmp_path, monkeypatch):
    escalation = build(Settings(home=tmp_path, escalation_closed_retention_seconds=1), DEFAULT_RULES)
    escalation.sink, escalation.store = RecordingSink(), FakeStateStore()
    clock, wall = Clock(), Wall()
    monkeypatch.setattr(agents.time, "monotonic", clock)
    monkeypatch.setattr(agents, "utcnow", wall)
    escalation.clock, escalation.wall = clock, wall
    return escalation


def releases(sink) -> list[str]:
    control = [r for r in sink.handed if r.topic.endswith("control")]
    return [json.loads(r.value)["incident_id"] for r in control if json.loads(r.value)["kind"] == "release"]


async def finished_incident(worker) -> str:
    report = poplar_fire(location=ev.Location(ward_code=POPLAR, address="Chrisp Street Market"))
    resolved = fact(ev.IncidentStatusChanged, report.incident_id, report.occurred_at, status="resolved")
    await worker.process(facts_of(report), PARTITION)
    await worker.process(facts_of(resolved, offset=8), PARTITION)
    worker.sink.handed, worker.sink.sent = [], []
    worker.wall.at += timedelta(seconds=2)  # past the retention: due for release (not a race with a fast tick)
    return str(report.incident_id)


async def test_a_release_notice_is_sent_once_while_it_is_on_its_way(worker):
    incident = await finished_incident(worker)
    for _ in range(4):  # the agent lags: the notice is not processed for a minute
        await worker.tick()
        worker.clock.now += 15
    assert releases(worker.sink) == [incident]
    await worker.on_rebalance()  # partitions may have moved: the new owner's table is indexed afresh
    await worker.tick()
    assert releases(worker.sink) == [incident, incident]


async def test_a_release_notice_the_broker_refused_is_sent_again(worker):
    incident = await finished_incident(worker)
    worker.sink.failure = KafkaTimeoutError()
    await worker.tick()
    worker.sink.failure = None
    await worker.tick()
    await worker.tick()
    assert releases(worker.sink) == [incident, incident]
    assert [r for r in worker.sink.sent if r.topic.endswith("control")] != []
