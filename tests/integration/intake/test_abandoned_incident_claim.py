"""An abandoned incident claim is taken over, once. A report claims its incident before it is
published (migration 0004, `claimed_by`); a writer that dies between that claim and its record
leaves the claim behind. While the claim is within twice the acknowledgement bound the writer may
still be publishing, so another report of the incident is refused (409, the incident already
reported); once it is older and its event is not on the topic, the next report takes it over and
is accepted exactly once: one report on the topic, the registry row settled as that report's.
The real app, broker and database; the dead writer is a store of another owner that claimed and
stopped."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from services.intake.registry import IncidentRecord
from services.intake.repository import IdempotencyStore
from services.intake.service import CLAIM_BOUNDS
from tests.integration.intake.conftest import bearer, intake_dsn, running_intake
from tests.integration.intake.test_api import note
from tests.integration.intake.test_two_replicas import named, outcome, reported, reports_on_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def claimed_by_a_writer_that_died(settings, incident: str) -> str:
    """What a killed intake process left: its report's event_id and incident claimed, nothing published."""
    dead = IdempotencyStore(intake_dsn(settings), timeout_s=5.0)
    await dead.start()
    event_id = uuid.uuid4()
    try:
        record = IncidentRecord(uuid.UUID(incident), "op-17", "council", "control_room", "op-17", (), "live", "OFFICIAL")
        assert await dead.claim(event_id, "op-17", None, record) is None  # claimed now
    finally:
        await dead.stop()
    return str(event_id)


async def registry_row(settings, incident: str):
    conn = await asyncpg.connect(intake_dsn(settings))
    try:
        return await conn.fetchrow("select reported_event_id, claimed_by, reporter from intake.incidents "
                                   "where incident_id = $1", uuid.UUID(incident))
    finally:
        await conn.close()


async def older_than_the_bound(settings, incident: str) -> None:
    """The claim's age as if its writer died longer than CLAIM_BOUNDS acknowledgement bounds ago."""
    age = CLAIM_BOUNDS * settings.intake_publish_timeout_s + 1
    conn = await asyncpg.connect(intake_dsn(settings))
    try:
        changed = await conn.execute("update intake.incidents set reported_at = reported_at - make_interval(secs => $2) "
                                     "where incident_id = $1 and claimed_by is not null", uuid.UUID(incident), age)
    finally:
        await conn.close()
    assert changed == "UPDATE 1"


async def test_an_abandoned_incident_claim_blocks_while_fresh_then_is_taken_over_by_one_report(
        intake_settings, topics):
    incident = str(uuid.uuid4())
    dead_event = await claimed_by_a_writer_that_died(intake_settings, incident)
    callers = bearer(intake_settings, subject="op-17"), bearer(intake_settings, subject="op-18")
    async with running_intake(intake_settings) as intake:
        fresh = await intake.post("/v1/events:batch", json={"events": [reported(incident)]}, headers=callers[0])
        assert outcome(fresh) == ("rejected", 409), fresh.text
        assert f"incident_id: incident {incident} is already reported" in named(fresh)
        row = await registry_row(intake_settings, incident)
        assert (str(row["reported_event_id"]), row["claimed_by"] is not None) == (dead_event, True)  # still the dead one's

        await older_than_the_bound(intake_settings, incident)
        one, other = await asyncio.gather(*(
            intake.post("/v1/events:batch", json={"events": [reported(incident)]}, headers=headers)
            for headers in callers))
        assert sorted([outcome(one), outcome(other)]) == [("accepted", 202), ("rejected", 409)], (one.text, other.text)
        winner, loser = (one, other) if outcome(one)[0] == "accepted" else (other, one)
        assert f"incident_id: incident {incident} is already reported" in named(loser)
        followed = await intake.post(f"/v1/incidents/{incident}/events", json=note(), headers=callers[0])
        assert followed.status_code == 202, followed.text  # the registry knows the incident now
    [taken] = winner.json()["results"]
    row = await registry_row(intake_settings, incident)
    assert (str(row["reported_event_id"]), row["claimed_by"]) == (taken["event_id"], None)  # settled: its record
    assert row["reporter"] == ("op-17" if winner is one else "op-18")
    assert await reports_on_topic(intake_settings, topics, {incident}) == {incident: 1}
