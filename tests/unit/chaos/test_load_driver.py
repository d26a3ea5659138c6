"""The load driver tells a valid write intake wrongly refused from one it rightly refused, by what
was acknowledged when the write was sent (not when its answer came back)."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from services.chaos.load import Driver, Item, Ledger, unreported

pytestmark = pytest.mark.unit

LEAD, OTHER = str(uuid.uuid4()), str(uuid.uuid4())


def _link(incident: str, lead: str) -> dict:
    return {"event_type": "IncidentLinked", "event_id": str(uuid.uuid4()), "incident_id": incident,
            "lead_incident_id": lead, "occurred_at": "2026-12-03T07:00:00+00:00"}


def test_a_fact_is_unreported_until_its_incident_and_its_lead_are_acknowledged():
    link = _link(OTHER, LEAD)
    assert unreported(link, set())
    assert unreported(link, {OTHER})  # the lead not yet
    assert not unreported(link, {OTHER, LEAD})
    assert not unreported({"event_type": "IncidentReported", "incident_id": OTHER}, set())


async def _refusal_after_the_leads_ack(tmp_path, acknowledged_before: bool) -> list[dict]:
    """A link whose 422 comes back after another worker's 202 for its lead arrived."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    driver = Driver(base_url="http://intake", token="t", ledger=ledger, rate=1.0)
    driver._reported.add(OTHER)
    if acknowledged_before:
        driver._reported.add(LEAD)

    def answer(request: httpx.Request) -> httpx.Response:
        driver._reported.add(LEAD)  # the lead's 202 reaches the other worker while this request is out
        return httpx.Response(200, json={"results": [
            {"status": "rejected", "code": 422, "error": "events.0.lead_incident_id: no such incident"}]})

    async with httpx.AsyncClient(base_url="http://intake", transport=httpx.MockTransport(answer)) as client:
        await driver._until_settled(client, [Item(_link(OTHER, LEAD), valid=True, single=False)], single=False)
    ledger.close()
    return [orjson.loads(line) for line in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]


async def test_a_link_sent_before_its_leads_202_is_rightly_refused(tmp_path):
    lines = await _refusal_after_the_leads_ack(tmp_path, acknowledged_before=False)
    assert [e["kind"] for e in lines if e["kind"] != "request"] == ["refused"]


async def test_a_link_sent_after_its_leads_202_and_refused_is_unexpected(tmp_path):
    lines = await _refusal_after_the_leads_ack(tmp_path, acknowledged_before=True)
    assert [e["kind"] for e in lines if e["kind"] != "request"] == ["unexpected"]
