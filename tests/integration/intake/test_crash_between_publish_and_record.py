"""Regression (issue 17, found by `muster chaos`): an intake process that lost its idempotency
record after the broker acknowledged (killed -9 in between, or PostgreSQL went away in between)
answered the client's retry by publishing the event a second time. Now the retry, in a fresh
intake process, finds its earlier copy on the topic and answers where it landed. The real app,
broker and database; the first process's record is made to fail as the database would."""

from __future__ import annotations

import uuid

import pytest

from services.intake.repository import IdempotencyStore, StoreUnavailable
from tests.integration.intake.conftest import bearer, records_of, running_intake
from tests.integration.intake.test_api import note, report, reported_with_notes

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def records_lost(monkeypatch):
    """While set, no idempotency record reaches the database (the broker still acknowledges)."""

    async def lost(self, written, pool=None):
        raise StoreUnavailable("idempotency store: ConnectionResetError")

    monkeypatch.setattr(IdempotencyStore, "_record_bulk", lost)
    return monkeypatch


async def test_a_retry_in_a_restarted_intake_answers_the_first_copy_and_publishes_no_second(
        intake_settings, topics, records_lost):
    event_id = str(uuid.uuid4())
    async with running_intake(intake_settings) as first_process:
        first = await first_process.post("/v1/incidents", json=report(event_id=event_id), headers=bearer(intake_settings))
    assert first.status_code == 202  # the broker has it; the record was lost
    records_lost.undo()
    async with running_intake(intake_settings) as restarted:
        again = await restarted.post("/v1/incidents", json=report(event_id=event_id), headers=bearer(intake_settings))
        assert again.status_code == 202
        assert again.json() == first.json()
        # the recovered report is in the registry too: the incident takes facts
        followed = await restarted.post(f"/v1/incidents/{first.json()['incident_id']}/events", json=note(),
                                        headers=bearer(intake_settings))
        assert followed.status_code == 202, followed.text
    assert len(await records_of(intake_settings, topics, event_id)) == 1


async def test_the_same_through_the_batch_endpoint(intake_settings, topics, records_lost):
    events = [{**e, "event_id": str(uuid.uuid4())} for e in reported_with_notes(3)]
    async with running_intake(intake_settings) as first_process:
        first = await first_process.post("/v1/events:batch", json={"events": events}, headers=bearer(intake_settings))
    assert first.status_code == 200 and {r["status"] for r in first.json()["results"]} == {"accepted"}
    records_lost.undo()
    async with running_intake(intake_settings) as restarted:
        again = await restarted.post("/v1/events:batch", json={"events": events}, headers=bearer(intake_settings))
    assert again.json() == first.json()
    for event in events:
        assert len(await records_of(intake_settings, topics, event["event_id"])) == 1
