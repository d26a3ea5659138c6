"""Crypto-shredding end to end: intake seals people before the topic, the projector and dead
letters never hold them in the clear, a cleared reader opens them, `muster people erase` ends
them for every replay, rebuild and read."""

from __future__ import annotations

import uuid

import orjson
import pytest

from services.people import erasure
from services.projector.rebuild import rebuild
from services.shared import sealing
from services.shared.auth import Role
from services.shared.events import Agency
from tests.integration.intake.conftest import bearer, read_topic, running_intake
from tests.integration.people.conftest import key_of, running_query, tables_holding
from tests.integration.projector.test_offsets_and_failures import _read_all
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

NAME = "Zelphine Quarrington"  # appears nowhere else
LATER = "Oswin Marchbanks-Tye"
REASON = {"X-Access-Reason": "welfare check follow-up"}


def _report() -> dict:
    return {"category": "violence", "severity": 3, "location": {"ward_code": "E05009331"},
            "description": "Fight outside the shops", "occurred_at": "2026-11-20T21:55:00Z",
            "people": [{"role": "victim", "name": NAME, "age": 34, "description": "cut to the hand"}]}


async def _detail(query, settings, incident_id, role=Role.CONTROL_ROOM, agency=Agency.COUNCIL, reason=True):
    headers = bearer(settings, role=role, agency=agency) | (REASON if reason else {})
    response = await query.get(f"/v1/incidents/{incident_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_people_are_sealed_on_the_log_opened_for_the_cleared_and_gone_after_erasure(world, running):
    settings = world.settings
    async with running_intake(settings) as intake:
        response = await intake.post("/v1/incidents", json=_report(), headers=bearer(settings))
        assert response.status_code == 202, response.text
        incident_id = uuid.UUID(response.json()["incident_id"])
        update = {"event_type": "IncidentUpdated", "occurred_at": "2026-11-20T22:05:00Z",
                  "people": [{"role": "witness", "name": LATER}]}
        response = await intake.post(f"/v1/incidents/{incident_id}/events", json=update, headers=bearer(settings))
        assert response.status_code == 202, response.text
        sealed_body = {**update, "people_sealed": {"alg": "A256GCM", "sealed": "A" * 60}}
        refused = await intake.post(f"/v1/incidents/{incident_id}/events", json=sealed_body, headers=bearer(settings))
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "people_sealed"

    # On the topic: sealed, and the seal opens with the incident's key (and only as its incident's).
    records = [r for r in await read_topic(settings, world.catalog) if r.key == str(incident_id).encode()]
    assert len(records) == 2
    key = await key_of(world.dsn, incident_id)
    assert key is not None and len(key) == 32
    opened = []
    for record in records:
        assert NAME.encode() not in record.value and LATER.encode() not in record.value
        fact = orjson.loads(record.value)
        assert fact.get("people") in ([], None)  # the released schema's type: a list, here empty
        people = fact["people_sealed"]
        assert set(people) == {"alg", "sealed"}
        opened += sealing.open_people(key, incident_id, people)
        with pytest.raises(sealing.Unsealable):
            sealing.open_people(key, uuid.uuid4(), people)
    assert [p["name"] for p in opened] == [NAME, LATER]

    # A poison copy of the sealed report: its dead letter holds neither the people nor their seal.
    poison = orjson.loads(records[0].value) | {"not_a_field": 1}
    poison_ack = await world.publish_raw(orjson.dumps(poison), key=str(incident_id).encode())

    running()
    await wait_until(lambda: world.fetchval("select count(*) from incident_events where incident_id = $1",
                                            incident_id), timeout=60, what="the facts projected")
    await wait_until(lambda: _letter_for(world, poison_ack), timeout=60, what="the poison copy dead-lettered")
    letter = await _letter_for(world, poison_ack)
    sealed_text = orjson.loads(records[0].value)["people_sealed"]["sealed"]
    assert NAME.encode() not in letter and sealed_text.encode() not in letter
    assert b"people" in letter  # named among the paths removed
    for needle in (NAME, LATER, "cut to the hand"):
        assert await tables_holding(world.dsn, needle) == [], needle

    async with running_query(settings) as query:
        cleared = await _detail(query, settings, incident_id)
        assert [p["name"] for p in cleared["people"]] == [LATER]  # the update gives the people now
        payload_people = [e["payload"].get("people") for e in cleared["timeline"]]
        assert [p[0]["name"] for p in payload_people if p] == [NAME, LATER]
        assert cleared["people_erased"] is False
        for role, agency, reason in ((Role.CCTV_OPERATOR, Agency.COUNCIL, True), (Role.CONTROL_ROOM, Agency.COUNCIL, False),
                                     (Role.CONTROL_ROOM, Agency.HOUSING, True)):
            other = await _detail(query, settings, incident_id, role, agency, reason)
            assert other["people"] is None and other["restricted_redacted"] is True
            assert NAME not in orjson.dumps(other).decode() and sealed_text not in orjson.dumps(other).decode()
            assert all("people_sealed" not in e["payload"] for e in other["timeline"])

        erased = await erasure.erase(settings, incident_id, by="dpo-3", reason="erasure request SAR-2291")
        assert erased.erased_now
        again = await erasure.erase(settings, incident_id, by="dpo-3", reason="again")
        assert not again.erased_now and again.erased_at == erased.erased_at
        after = await _detail(query, settings, incident_id)
        assert after["people"] is None and after["people_erased"] is True
        assert after["people_erased_at"] is not None and after["restricted_redacted"] is False
        assert [e["payload"]["people"] for e in after["timeline"] if "people" in e["payload"]] == ["[erased]"] * 2
        assert all("people_sealed" not in e["payload"] for e in after["timeline"] + cleared["timeline"])

    audit = await world.fetch("select erased_by, reason, basis, db_user from muster_keys.erasures where incident_id = $1",
                              incident_id)
    assert [tuple(r) for r in audit] == [("dpo-3", "erasure request SAR-2291", "request", "postgres")]
    assert await key_of(world.dsn, incident_id) is None
    key_hex = key.hex()
    assert await tables_holding(world.dsn, key_hex) == []

    # Replaying the log now: the seals are there, the key is not; a rebuild brings back no trace.
    await rebuild(settings, progress=False)
    assert await world.fetchval("select count(*) from incident_events where incident_id = $1", incident_id) == 2
    for needle in (NAME, LATER, "cut to the hand", key_hex):
        assert await tables_holding(world.dsn, needle) == [], needle
    async with running_query(settings) as query:
        rebuilt = await _detail(query, settings, incident_id)
        assert rebuilt["people"] is None and rebuilt["people_erased"] is True

    # Nobody can record people for it again (the erased key is never remade).
    async with running_intake(settings) as intake:
        response = await intake.post(f"/v1/incidents/{incident_id}/events", json=update, headers=bearer(settings))
        assert response.status_code == 409 and response.json()["errors"][0]["field"] == "people"
        note = {"event_type": "NoteAdded", "occurred_at": "2026-11-20T22:10:00Z", "text": "Scene cleared"}
        response = await intake.post(f"/v1/incidents/{incident_id}/events", json=note, headers=bearer(settings))
        assert response.status_code == 202, response.text


async def _letter_for(world, ack) -> bytes | None:
    for record in await _read_all(world.settings, world.catalog.name("deadletter")):
        letter = orjson.loads(record.value)
        if (letter["source_partition"], letter["source_offset"]) == (ack.partition, ack.offset):
            return record.value
    return None
