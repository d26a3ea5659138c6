"""The first report is the only report across intake replicas: two intake processes on the same
database and broker (two apps, each with its own store owner and its own in-process holds), racing
the first report of the same new incident, accept it once. Before the incident claim (each report
claims its incident in the statement that claims its event_id), a report was checked against the
registry and its record written only after the publish, so both replicas could accept it."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack

import pytest

from services.shared.auth import Principal, Role
from services.shared import ids
from services.shared.events import Agency
from tests.integration.intake.conftest import bearer, read_topic, running_intake
from tests.integration.intake.test_api import report

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RACED = 50


def reported(incident_id: str) -> dict:
    return {**report(), "event_type": "IncidentReported", "incident_id": incident_id, "event_id": str(uuid.uuid4())}


def outcome(response) -> tuple[str, int]:
    """("accepted" | "rejected", status) of a single request or of a batch's one item."""
    if response.status_code == 200:
        [item] = response.json()["results"]
        return item["status"], item["code"] or 202
    return ("accepted" if response.status_code == 202 else "rejected"), response.status_code


def named(response) -> str:
    """What the refusal says: a batch item's error, or a single request's fields."""
    body = response.json()
    if response.status_code == 200:
        return body["results"][0]["error"]
    return " ".join(f"{e['field']}: {e['message']}" for e in body["errors"])


async def reports_on_topic(settings, topics, incidents: set[str]) -> dict[str, int]:
    counts = dict.fromkeys(incidents, 0)
    for record in await read_topic(settings, topics):
        key = (record.key or b"").decode()
        if key in counts and json.loads(record.value)["event_type"] == "IncidentReported":
            counts[key] += 1
    return counts


async def two_replicas(settings, stack: AsyncExitStack):
    return [await stack.enter_async_context(running_intake(settings)) for _ in range(2)]


def assert_one_acceptance_each(incidents: list[str], pairs: list[tuple], derived: bool = False) -> None:
    """Of each pair, one accepted and the other refused (409) as a second report; `derived`: the first
    of each pair is a single report whose incident id intake derived from its key, refused (when it
    lost) as one whose derived id another report took (guard.derived_incident_taken)."""
    for incident, (one, other) in zip(incidents, pairs):
        outcomes = sorted([outcome(one), outcome(other)])
        assert outcomes == [("accepted", 202), ("rejected", 409)], (incident, one.text, other.text)
        refused = one if outcome(one)[0] == "rejected" else other
        if derived and refused is one:
            assert f"the incident id intake derives from it ({incident}) is another report's" in named(refused), (
                named(refused))
        else:
            assert f"incident_id: incident {incident} is already reported" in named(refused), named(refused)


async def test_two_replicas_racing_the_first_report_of_an_incident_accept_it_once(intake_settings, topics):
    incidents = [str(uuid.uuid4()) for _ in range(RACED)]
    async with AsyncExitStack() as stack:
        first, second = await two_replicas(intake_settings, stack)
        callers = bearer(intake_settings, subject="op-17"), bearer(intake_settings, subject="op-18")
        responses = await asyncio.gather(*(
            replica.post("/v1/events:batch", json={"events": [reported(incident)]}, headers=headers)
            for incident in incidents for replica, headers in ((first, callers[0]), (second, callers[1]))
        ))
    assert_one_acceptance_each(incidents, list(zip(responses[::2], responses[1::2])))
    assert await reports_on_topic(intake_settings, topics, set(incidents)) == dict.fromkeys(incidents, 1)


async def test_a_report_through_the_single_endpoint_and_one_through_the_batch_of_another_replica(
        intake_settings, topics):
    """A report sent with an Idempotency-Key names the incident intake derives (the key's event_id's,
    under the deployment's id key, which this test holds): another replica's batch naming that
    incident races the single endpoint's claim."""
    caller = Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)
    keys = [f"race-{uuid.uuid4()}" for _ in range(RACED)]
    derived = ids.from_settings(intake_settings)
    incidents = [str(derived.incident_id_for(derived.event_id_for_key(caller.subject, key))) for key in keys]
    headers = bearer(intake_settings, subject=caller.subject)
    async with AsyncExitStack() as stack:
        first, second = await two_replicas(intake_settings, stack)
        responses = await asyncio.gather(*(
            request for key, incident in zip(keys, incidents) for request in (
                first.post("/v1/incidents", json=report(), headers={**headers, "Idempotency-Key": key}),
                second.post("/v1/events:batch", json={"events": [reported(incident)]}, headers=headers),
            )
        ))
    assert_one_acceptance_each(incidents, list(zip(responses[::2], responses[1::2])), derived=True)
    assert await reports_on_topic(intake_settings, topics, set(incidents)) == dict.fromkeys(incidents, 1)
