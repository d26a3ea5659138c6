"""GET /v1/stream: PostgreSQL LISTEN/NOTIFY fanned out to server-sent events.

Triggers (migration 0002) notify `muster_changes` with a table and a key when the projector
commits a change. One listening connection per process hands each notification to every
connected reader's queue; each reader reads the changed rows back in its own scope (row-
level security, then the Python rules), so it receives only what it may see.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import orjson

from services.shared.logging import get_logger

log = get_logger("query.stream")

CHANNEL = "muster_changes"
QUEUE_MAX = 10_000
COALESCE_S = 0.02  # gather notifications that arrive together (one projector batch) into one read


@dataclass
class Changes:
    """Keys of changed rows, as the triggers name them."""

    incidents: set[uuid.UUID] = field(default_factory=set)
    escalations: set[uuid.UUID] = field(default_factory=set)
    tension: set[tuple[str, str]] = field(default_factory=set)

    def add(self, payload: str) -> None:
        table, _, key = payload.partition(" ")
        try:
            if table == "incidents":
                self.incidents.add(uuid.UUID(key))
            elif table == "escalations":
                self.escalations.add(uuid.UUID(key))
            elif table == "ward_tension":
                ward, _, mode = key.partition(" ")
                self.tension.add((ward, mode))
        except ValueError:
            log.warning("unreadable change notification", table=table)

    def __bool__(self) -> bool:
        return bool(self.incidents or self.escalations or self.tension)


class Hub:
    """One LISTEN connection; a bounded queue per subscriber."""

    def __init__(self, dsn: str, on_notification=None) -> None:
        self.dsn = dsn
        self.subscribers: set[asyncio.Queue] = set()
        self._task: asyncio.Task | None = None
        self._on_notification = on_notification or (lambda: None)
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="query-stream-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_MAX)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    def _deliver(self, _conn, _pid, _channel, payload: str) -> None:
        self._on_notification()
        for queue in self.subscribers:
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                pass  # a reader this far behind misses changes; its board resynchronises on reconnect

    async def _listen_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                log.warning("stream listener cannot connect; retrying", error=type(exc).__name__, retry_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            closed = asyncio.get_running_loop().create_future()
            conn.add_termination_listener(lambda _c: closed.done() or closed.set_result(None))
            try:
                await conn.add_listener(CHANNEL, self._deliver)
                self.listening.set()
                delay = 0.2
                await closed
                log.warning("stream listener connection lost; reconnecting")
            finally:
                self.listening.clear()
                if not conn.is_closed():
                    await conn.close()


class TokenExpired(Exception):
    """The token that opened the stream has expired: the stream ends."""


async def drain(queue: asyncio.Queue, until: float = 0.0) -> Changes:
    """Wait for a change, then take what else arrives within COALESCE_S. `until`: epoch
    seconds after which no change is handed out (TokenExpired); 0 for no limit."""
    changes = Changes()
    if until:
        remaining = until - time.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            changes.add(await asyncio.wait_for(queue.get(), remaining))
        except (TimeoutError, asyncio.TimeoutError):
            raise TokenExpired from None
    else:
        changes.add(await queue.get())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + COALESCE_S
    while True:
        while not queue.empty():
            changes.add(queue.get_nowait())
        remaining = deadline - loop.time()
        if remaining <= 0:
            return changes
        try:
            changes.add(await asyncio.wait_for(queue.get(), remaining))
        except asyncio.TimeoutError:
            return changes


def sse(kind: str, body: dict) -> dict:
    return {"event": kind, "data": orjson.dumps(body, default=str).decode()}
