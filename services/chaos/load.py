"""Simulator load through the intake API at a set rate, and the ledger of what intake answered.

The simulated borough (services.simulator.generator) is played at `rate` events a second,
with every event's `occurred_at` moved to the moment it is sent (so acknowledgement
deadlines fall due in real time). Most incidents go through `POST /v1/events:batch`; one in
ten goes event by event (`POST /v1/incidents`, then `POST /v1/incidents/{id}/events`); one
in twenty is an exercise. One write in a hundred is deliberately invalid (severity 9): intake
must refuse it and it must never appear anywhere. One in forty is a severity-4 report that
nobody ever acknowledges, so acknowledgement deadlines fall due during the run.

A refused-for-now write (a 503, an item refused as unavailable, a connection error) is
retried with the same event_id after Retry-After, as a partner system would. The ledger
(JSON lines) records every request (status, Retry-After, duration) and every write's
outcome: `ack` (intake answered 202/accepted, with partition and offset), `refused` (a 4xx
for a write meant to be refused), `unexpected` (a 4xx for a valid write), `unknown`
(never acknowledged after every retry: it may or may not be on the topic).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import orjson

from services.shared.ids import DerivedIds
from services.shared.events import Mode, without_token_fields
from services.shared.settings import LOCAL_DEV_ID_KEY
from services.simulator.generator import FeedConfig, generate

LOAD_HOURS = 24 * 366 * 50
REQUEST_BOUND_S = 12.0  # longer than intake's publish timeout + its idempotency lookup: past it is a hang
RETRIES = 12


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def unreported(body: dict, reported: set[str]) -> bool:
    """A fact (not a report) whose incident, or whose lead for a link, has no acknowledged report
    among `reported`: intake rightly refuses it (404, or 422 naming `lead_incident_id`)."""
    if body["event_type"] == "IncidentReported":
        return False
    if body["incident_id"] not in reported:
        return True
    return body["event_type"] == "IncidentLinked" and body["lead_incident_id"] not in reported


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._out = path.open("ab")
        self.counts: dict[str, int] = {}

    def write(self, kind: str, **fields) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self._out.write(orjson.dumps({"kind": kind, "t": time.time(), **fields}, default=str) + b"\n")

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.close()


@dataclass
class Item:
    body: dict
    valid: bool
    single: bool
    attempts: int = 0
    unreported: bool = False  # when last sent: a fact whose incident or lead had no acknowledged report

    @property
    def event_id(self) -> str:
        return self.body["event_id"]


@dataclass
class Driver:
    base_url: str
    token: str
    ledger: Ledger
    rate: float
    seed: int = 17
    workers: int = 4
    batch_size: int = 50
    single_share: int = 10  # one incident in this many goes event by event
    exercise_share: int = 20
    invalid_share: int = 100
    unanswered_share: int = 40  # one write in this many is a severe report nobody ever answers
    # The cluster's intake id key: the harness, as its operator, holds it and so knows the id intake
    # assigns a single-path report's incident before the answer (its later facts are queued meanwhile).
    ids: DerivedIds = field(default_factory=lambda: DerivedIds(LOCAL_DEV_ID_KEY))
    sent: int = 0
    acked: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _remap: dict[str, str] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)  # incidents whose report intake acknowledged

    def _feeds(self):
        start = datetime(2026, 11, 20, tzinfo=timezone.utc)
        live = generate(FeedConfig(start=start, hours=LOAD_HOURS, seed=self.seed, intensity=1.0))
        exercise = generate(FeedConfig(start=start, hours=LOAD_HOURS, seed=self.seed + 1, mode=Mode.EXERCISE))
        rng = random.Random(self.seed)
        while True:
            yield next(exercise if rng.randrange(self.exercise_share) == 0 else live)

    def _prepare(self, event) -> Item:
        body = without_token_fields(orjson.loads(event.model_dump_json()))  # intake fills them from the token
        body.pop("recorded_at", None)
        body["occurred_at"] = _now_iso()
        incident = body["incident_id"]
        single = zlib.crc32(incident.encode()) % self.single_share == 0
        if single:
            if body["event_type"] == "IncidentReported":
                self._remap[incident] = str(self.ids.incident_id_for(uuid.UUID(body["event_id"])))
            body["incident_id"] = self._remap.get(incident, incident)
        if "lead_incident_id" in body:  # a lead raised on the single-event path has intake's id for it
            body["lead_incident_id"] = self._remap.get(body["lead_incident_id"], body["lead_incident_id"])
        return Item(body, True, single)

    def _invalid(self) -> Item:
        incident = str(uuid.uuid4())
        body = {"event_type": "IncidentReported", "event_id": str(uuid.uuid4()), "incident_id": incident,
                "occurred_at": _now_iso(), "category": "fire", "severity": 9,
                "location": {"ward_code": "E05009317"}, "description": "chaos: must be refused"}
        return Item(body, False, False)

    def _unanswered(self) -> Item:
        """A severity-4 report with no fact after it: its acknowledgement deadlines fall due."""
        body = {"event_type": "IncidentReported", "event_id": str(uuid.uuid4()), "incident_id": str(uuid.uuid4()),
                "occurred_at": _now_iso(), "category": "other", "severity": 4,
                "location": {"ward_code": "E05009317"}, "description": "chaos: nobody answers"}
        return Item(body, True, False)

    async def run(self, seconds: float) -> None:
        queues = [asyncio.Queue(maxsize=10_000) for _ in range(self.workers)]
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_BOUND_S,
                                     headers={"Authorization": f"Bearer {self.token}"},
                                     limits=httpx.Limits(max_connections=self.workers * 2)) as client:
            tasks = [asyncio.create_task(self._worker(client, q)) for q in queues]
            try:
                await self._pace(queues, seconds)
                for q in queues:
                    await q.put(None)
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                self.ledger.flush()

    def stop(self) -> None:
        self._stop.set()

    async def _pace(self, queues: list[asyncio.Queue], seconds: float) -> None:
        feed = self._feeds()
        t0 = time.monotonic()
        made = 0
        while not self._stop.is_set():
            elapsed = time.monotonic() - t0
            if elapsed >= seconds:
                break
            due = int(elapsed * self.rate) - made
            for _ in range(max(0, due)):
                made += 1
                if made % self.invalid_share == 0:
                    item = self._invalid()
                elif made % self.unanswered_share == 0:
                    item = self._unanswered()
                else:
                    item = self._prepare(next(feed))
                q = queues[zlib.crc32(item.body["incident_id"].encode()) % len(queues)]
                if q.full():
                    self.ledger.write("skipped", event_id=item.event_id)  # offered load the harness could not send
                    continue
                q.put_nowait(item)
            await asyncio.sleep(0.02)

    async def _worker(self, client: httpx.AsyncClient, q: asyncio.Queue) -> None:
        done = False
        while not done:
            first = await q.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.batch_size and not q.empty():
                nxt = q.get_nowait()
                if nxt is None:
                    done = True
                    break
                batch.append(nxt)
            singles = [i for i in batch if i.single]
            many = [i for i in batch if not i.single]
            for item in singles:
                await self._until_settled(client, [item], single=True)
            if many:
                await self._until_settled(client, many, single=False)

    async def _until_settled(self, client: httpx.AsyncClient, items: list[Item], single: bool) -> None:
        pending = items
        while pending:
            retry_after, pending = await (self._single(client, pending[0]) if single else self._batch(client, pending))
            if pending:
                for item in pending:
                    item.attempts += 1
                left = [i for i in pending if i.attempts < RETRIES]
                for item in pending:
                    if item.attempts >= RETRIES:
                        self.ledger.write("unknown", event_id=item.event_id, incident_id=item.body["incident_id"])
                pending = left
                if pending:
                    await asyncio.sleep(min(retry_after, 5.0))

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict, n: int):
        began = time.time()
        try:
            response = await client.post(path, content=orjson.dumps(body),
                                         headers={"Content-Type": "application/json"})
        except httpx.TimeoutException as exc:
            self.ledger.write("request", path=path, n=n, status=None, error="timeout", detail=type(exc).__name__,
                              began=began, seconds=time.time() - began)
            return None
        except httpx.HTTPError as exc:
            self.ledger.write("request", path=path, n=n, status=None, error="connection", detail=type(exc).__name__,
                              began=began, seconds=time.time() - began)
            return None
        self.ledger.write("request", path=path, n=n, status=response.status_code,
                          retry_after=response.headers.get("retry-after"), began=began, seconds=time.time() - began)
        return response

    def _ack(self, item: Item, result: dict, sent: float) -> None:
        """`sent`: when its request went out (the event may reach a topic before its 202 does)."""
        self.acked += 1
        if item.body["event_type"] == "IncidentReported":
            self._reported.add(str(result["incident_id"]))
        self.ledger.write("ack", event_id=item.event_id, incident_id=str(result["incident_id"]),
                          event_type=item.body["event_type"], mode=item.body.get("mode", "live"),
                          partition=result["partition"], offset=result["offset"], single=item.single, sent=sent)

    def _sending(self, items: list[Item]) -> None:
        """Before each attempt: whether each fact's incident (and a link's lead) had an acknowledged
        report at the moment it was sent. The answer may come after that report's 202 (another
        worker's request), so this is decided at sending, not when the refusal arrives."""
        for item in items:
            item.unreported = unreported(item.body, self._reported)

    def _refused(self, item: Item, status: int, detail: str) -> None:
        # a fact sent before its incident's (or a link's lead's) report was acknowledged is rightly
        # refused: intake's registry did not know that incident yet (a lead reported by another
        # worker's queue; a report never confirmed, its request timed out every time)
        kind = "unexpected" if item.valid and not item.unreported else "refused"
        self.ledger.write(kind, event_id=item.event_id, incident_id=item.body["incident_id"], status=status,
                          detail=str(detail)[:200])

    @staticmethod
    def _retry_after(response: httpx.Response | None) -> float:
        try:
            return float(response.headers.get("retry-after", 1)) if response is not None else 1.0
        except ValueError:
            return 1.0

    async def _single(self, client: httpx.AsyncClient, item: Item) -> tuple[float, list[Item]]:
        body = dict(item.body)
        incident = body.pop("incident_id")
        if body["event_type"] == "IncidentReported":
            path = "/v1/incidents"
        else:
            path = f"/v1/incidents/{incident}/events"
        self.sent += item.attempts == 0
        self._sending([item])
        sent = time.time()
        response = await self._post(client, path, body, 1)
        if response is None or response.status_code == 503 or response.status_code >= 500:
            return self._retry_after(response), [item]
        if response.status_code == 202:
            self._ack(item, response.json(), sent)
        else:
            self._refused(item, response.status_code, response.text)
        return 0.0, []

    async def _batch(self, client: httpx.AsyncClient, items: list[Item]) -> tuple[float, list[Item]]:
        self.sent += sum(1 for i in items if i.attempts == 0)
        self._sending(items)
        sent = time.time()
        response = await self._post(client, "/v1/events:batch", {"events": [i.body for i in items]}, len(items))
        if response is None or response.status_code >= 500:
            return self._retry_after(response), items
        if response.status_code != 200:
            for item in items:
                self._refused(item, response.status_code, response.text)
            return 0.0, []
        again = []
        for item, result in zip(items, response.json()["results"]):
            if result["status"] == "accepted":
                self._ack(item, result, sent)
            elif item.valid and (result.get("code") == 503 or str(result.get("error") or "").startswith("(event)")):
                again.append(item)  # unavailable for this item (the broker refused it, or no look-up): retry
            else:
                self._refused(item, 422, result.get("error") or "")
        return (1.0, again) if again else (0.0, [])
