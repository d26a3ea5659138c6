"""Where the simulated events go, and how fast.

Sinks: straight to Kafka (the incidents topic, keyed by incident_id, through the one codec),
through the intake API (`POST /v1/events:batch` with a bearer token, as partner systems do),
or to JSON lines (to compare two runs byte for byte). `play` paces a feed by its simulated
clock (a speed-up), a rate limit, or neither, and shows a progress bar.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from tqdm import tqdm

import orjson

from services.shared import events as ev, sealing
from services.shared.codec import Encoded, editions
from services.shared.settings import Settings


class SimulateError(RuntimeError):
    """A one-line problem: the sink refused the feed."""


class Sink(Protocol):
    batch_size: int

    def prepare(self, event: ev.Event) -> Any: ...

    async def start(self) -> None: ...

    async def send(self, batch: list[Any]) -> None: ...

    async def close(self) -> None: ...

    def describe(self) -> str: ...


class KafkaSink:
    """Straight to the topic with a durable, idempotent producer: per-incident order holds. Without
    intake there is no key to seal people with, so a simulated fact goes without its people."""

    def __init__(self, settings: Settings, topic: str, batch_size: int = 2000) -> None:
        self.settings, self.topic, self.batch_size = settings, topic, batch_size
        self._producer = None
        self._unacked: list[asyncio.Future] = []

    def prepare(self, event: ev.Event) -> list[Encoded]:
        if sealing.needs_sealing(event):  # people reach the topic only sealed, through intake (docs/security.md)
            event = event.model_copy(update={sealing.FIELD: ()})
        return editions(event)  # an older schema version still produced follows its event

    async def start(self) -> None:
        from services.shared.kafka import make_producer

        self._producer = make_producer(self.settings, linger_ms=5)
        await self._producer.start()

    async def send(self, batch: list[list[Encoded]]) -> None:
        for records in batch:
            for record in records:
                self._unacked.append(await self._producer.send(self.topic, record.value, key=record.key,
                                                               headers=record.headers))
        if len(self._unacked) >= 10 * self.batch_size:
            await self._settle()

    async def _settle(self) -> None:
        pending, self._unacked = self._unacked, []
        await asyncio.gather(*pending)  # raises the first failed write

    async def close(self) -> None:
        if self._producer is None:
            return
        try:
            await self._producer.flush()
            await self._settle()
        finally:
            await self._producer.stop()
            self._producer = None

    def describe(self) -> str:
        return f"kafka topic {self.topic}"


class ApiSink:
    """Through intake: POST /v1/events:batch {"events": [...]} with a bearer token."""

    def __init__(self, base_url: str, token: str, batch_size: int = 200, timeout: float = 30.0,
                 transport=None) -> None:
        self.url = base_url.rstrip("/") + "/v1/events:batch"
        self.token, self.batch_size, self.timeout = token, batch_size, timeout
        self.transport = transport  # tests hand in an httpx transport
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self._client = None

    def prepare(self, event: ev.Event) -> bytes:
        return orjson.dumps(ev.without_token_fields(orjson.loads(event.model_dump_json())))

    async def start(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(timeout=self.timeout, transport=self.transport, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})

    async def send(self, batch: list[bytes]) -> None:
        import httpx

        body = b'{"events":[' + b",".join(batch) + b"]}"
        try:
            response = await self._client.post(self.url, content=body)
        except httpx.HTTPError as exc:
            raise SimulateError(f"intake API {self.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise SimulateError(f"intake API {self.url} answered {response.status_code}: {response.text[:300]}")
        for result in response.json().get("results", []):
            if result.get("status") == "accepted":
                self.accepted += 1
            else:
                self.rejected[str(result.get("error") or result.get("detail") or result.get("status"))[:120]] += 1

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def describe(self) -> str:
        return f"intake API {self.url}"


class JsonlSink:
    """One event per line, exactly as it would go on the wire: `-` for standard output."""

    def __init__(self, path: str, batch_size: int = 1000) -> None:
        self.path, self.batch_size = path, batch_size
        self._out = None

    def prepare(self, event: ev.Event) -> bytes:
        return event.model_dump_json().encode()

    async def start(self) -> None:
        self._out = sys.stdout.buffer if self.path == "-" else Path(self.path).open("wb")

    async def send(self, batch: list[bytes]) -> None:
        self._out.write(b"".join(line + b"\n" for line in batch))

    async def close(self) -> None:
        if self._out is not None:
            self._out.flush()
            if self._out is not sys.stdout.buffer:
                self._out.close()

    def describe(self) -> str:
        return "standard output" if self.path == "-" else str(self.path)


@dataclass
class Tally:
    """What went out: event counts by type, and the incidents raised."""

    by_type: Counter[str] = field(default_factory=Counter)
    incident_ids: set = field(default_factory=set)

    @property
    def events(self) -> int:
        return sum(self.by_type.values())

    @property
    def incidents(self) -> int:
        return self.by_type["IncidentReported"]

    def count(self, events: Iterable[ev.IncidentEvent]) -> Iterator[ev.IncidentEvent]:
        for event in events:
            self.by_type[event.event_type] += 1
            if event.event_type == "IncidentReported":
                self.incident_ids.add(event.incident_id)
            yield event


@dataclass(frozen=True)
class Pace:
    """speedup: simulated seconds per real second (None: as fast as possible);
    rate: at most this many events per second (None: no limit)."""

    speedup: float | None = None
    rate: float | None = None


def schedule(events: Iterable[ev.Event], sink: Sink, start: datetime, pace: Pace) -> Iterator[tuple[float, Any]]:
    """(seconds after the start of play when it is due, payload) for each event."""
    for event in events:
        due = (event.recorded_at - start).total_seconds() / pace.speedup if pace.speedup else 0.0
        yield max(due, 0.0), sink.prepare(event)


@dataclass
class Played:
    sent: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


async def play(items: Iterable[tuple[float, Any]], sink: Sink, *, rate: float | None = None,
               progress: bool = True, total: int | None = None, unit_label: str = "ev") -> Played:
    """Send each payload no earlier than it is due (and within the rate limit), in batches.

    The clock stops when the sink has every event (for Kafka: acknowledged by the broker)."""
    slack = 0.005  # do not sleep for less than this: batch instead
    bar = tqdm(total=total, unit=unit_label, disable=not progress, file=sys.stderr, dynamic_ncols=True)
    await sink.start()
    t0 = time.monotonic()
    batch: list[Any] = []
    sent = 0
    try:
        for due, payload in items:
            if rate:
                due = max(due, sent / rate)
            wait = t0 + due - time.monotonic()
            if wait > slack:
                if batch:
                    await sink.send(batch)
                    bar.update(len(batch))
                    batch = []
                await asyncio.sleep(wait)
            batch.append(payload)
            sent += 1
            if len(batch) >= sink.batch_size:
                await sink.send(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            await sink.send(batch)
            bar.update(len(batch))
    finally:
        await sink.close()
        bar.close()
    return Played(sent=sent, seconds=time.monotonic() - t0)

