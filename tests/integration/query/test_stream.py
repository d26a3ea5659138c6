"""GET /v1/stream: new and changed incidents, escalations and tension changes arrive within
a second of the projector's commit, and each reader gets only what it may see."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from services.shared import events as ev
from services.shared.auth import Role
from services.shared.events import Agency
from tests import factories as f
from tests.integration.query.conftest import headers, raised
from tests.support import wait_until

pytestmark = pytest.mark.postgres

T = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict, float]] = []
        self.ready = asyncio.Event()

    def of(self, kind: str) -> list[dict]:
        return [body for k, body, _ in self.events if k == kind]

    def incident_ids(self) -> set[str]:
        return {b["incident_id"] for b in self.of("incident")}


@asynccontextmanager
async def listening(url: str, hdrs: dict):
    listener = Listener()

    async def read():
        async with httpx.AsyncClient(base_url=url, timeout=None) as c:
            async with c.stream("GET", "/v1/stream", headers=hdrs) as response:
                assert response.status_code == 200
                kind = None
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and kind:
                        listener.events.append((kind, json.loads(line.split(":", 1)[1]), time.monotonic()))
                        if kind == "ready":
                            listener.ready.set()

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        yield listener
    finally:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - whatever the listener ended with
            pass


async def test_a_new_incident_reaches_a_connected_reader_within_a_second(query_url, store, query_settings):
    async with listening(query_url, headers(query_settings, Role.CONTROL_ROOM, Agency.COUNCIL)) as listener:
        report = f.reported(occurred_at=T)
        written = time.monotonic()
        await store.write(report)
        await wait_until(lambda: str(report.incident_id) in listener.incident_ids(), timeout=5, what="the incident")
        arrived = next(t for k, b, t in listener.events if k == "incident" and b["incident_id"] == str(report.incident_id))
        assert arrived - written < 1.0
        ack = f.fact(ev.IncidentAcknowledged, report.incident_id, T + timedelta(minutes=1), acknowledged_by="op-1")
        await store.write(ack)
        await wait_until(
            lambda: any(b["incident_id"] == str(report.incident_id) and b["status"] == "acknowledged"
                        for b in listener.of("incident")), timeout=5, what="the status change",
        )


async def test_escalations_and_tension_changes_are_streamed(query_url, store, query_settings):
    async with listening(query_url, headers(query_settings, Role.ANALYST, Agency.FIRE)) as listener:
        report = f.reported(occurred_at=T + timedelta(hours=1))
        change = ev.TensionLevelChanged(
            ward_code=f.POPLAR, ward_name="Poplar", old_level="normal", new_level="high", score=4, observed=8,
            expected=2, window="24h/1h", window_start=T, window_end=T + timedelta(hours=24),
            occurred_at=T + timedelta(hours=24), source=f.source(kind="system", id="tension", agency=None),
        )
        await store.write(report, raised(report), change)
        await wait_until(lambda: listener.of("escalation") and listener.of("tension"), timeout=5, what="both")
        assert listener.of("escalation")[0]["incident_id"] == str(report.incident_id)
        assert listener.of("tension")[0]["tension"]["level"] == "high"


READERS = [
    (Role.CONTROL_ROOM, Agency.COUNCIL, None),
    (Role.CONTROL_ROOM, Agency.COUNCIL, "duty"),
    (Role.RESPONDER, Agency.POLICE, "attending"),
    (Role.RESPONDER, Agency.FIRE, "attending"),
    (Role.ANALYST, Agency.COUNCIL, "review"),
    (Role.SAFEGUARDING, Agency.HOUSING, "case"),
    (Role.SAFEGUARDING, Agency.HOUSING, None),
    (Role.ADMIN, Agency.COUNCIL, "audit"),
]


async def test_each_reader_is_streamed_only_what_it_may_see_and_sensitive_deliveries_are_audited(
    query_url, store, query_settings
):
    sensitive = f.reported(occurred_at=T + timedelta(hours=2), category="domestic_abuse",
                           source=f.source(agency="police"), agencies_required=("police",))
    marker = f.reported(occurred_at=T + timedelta(hours=2, minutes=1))
    async with listening_all(query_url, query_settings) as listeners:
        await store.write(sensitive)
        await store.write(marker)  # committed after: once a reader has it, it has had its chance at the first
        await wait_until(lambda: all(str(marker.incident_id) in one.incident_ids() for _, one in listeners),
                         timeout=5, what="the marker at every reader")
        for (role, agency, reason, subject), listener in listeners:
            expected = reason is not None and (role in (Role.SAFEGUARDING, Role.ADMIN) or agency == Agency.POLICE)
            assert (str(sensitive.incident_id) in listener.incident_ids()) == expected, (role, agency, reason)
            audited = [r["record_id"] for r in await store.audit_rows(subject) if r["endpoint"] == "/v1/stream"]
            assert audited == ([str(sensitive.incident_id)] if expected else [])


@asynccontextmanager
async def listening_all(url, settings):
    stack = []
    listeners = []
    try:
        for i, (role, agency, reason) in enumerate(READERS):
            subject = f"stream-{i}-{time.monotonic_ns()}"
            cm = listening(url, headers(settings, role, agency, subject=subject, reason=reason))
            listeners.append(((role, agency, reason, subject), await cm.__aenter__()))
            stack.append(cm)
        yield listeners
    finally:
        for cm in reversed(stack):
            await cm.__aexit__(None, None, None)


async def test_the_stream_ends_when_its_token_expires(query_url, query_settings):
    """A stream opened with a token lives no longer than the token (here 2 s): an `expired`
    event, then the server closes it."""
    from services.shared.auth import mint_token

    short = mint_token(query_settings, subject="stream-expiry", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL, ttl_s=2)
    kinds: list[str] = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=query_url, timeout=15) as c:
        async with c.stream("GET", "/v1/stream", headers={"Authorization": f"Bearer {short}"}) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():  # returns only when the server ends the stream
                if line.startswith("event:"):
                    kinds.append(line.split(":", 1)[1].strip())
    assert kinds[0] == "ready" and kinds[-1] == "expired"
    assert time.monotonic() - started < 10


async def test_the_board_page_takes_no_token_from_its_url_query(client, query_settings):
    """A bearer token in a URL query ends up in server logs, history and Referer headers: the
    board's pages carry no data and read no token from their query string."""
    h = headers(query_settings, Role.CONTROL_ROOM, Agency.COUNCIL)
    token = h["Authorization"].split(" ", 1)[1]
    page = await client.get("/board", params={"token": token})
    assert page.status_code == 200 and token not in page.text
    script = (await client.get("/board/static/board.js")).text
    assert 'search).get("token")' not in script and "location.search.slice" not in script
