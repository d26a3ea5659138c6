"""Fakes of the project's own interfaces, for unit tests. Each implements the same Protocol
as the real adapter; where the adapter has a contract suite (tests/contract/), the fake runs
the same suite, so it cannot drift."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    headers: Any = None


@dataclass
class RecordingSink:
    """services.shared.stage.Sink: keeps what a stage sends and dead-letters."""

    sent: list[Sent] = field(default_factory=list)
    dead: list[tuple[Any, BaseException | str, str]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int | None = None,
                   headers: Any = None) -> asyncio.Future:
        self.sent.append(Sent(topic, key, value, partition, headers))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def dead_letter(self, record: Any, error: BaseException | str, input_name: str) -> None:
        self.dead.append((record, error, input_name))


@dataclass
class RecordingSender:
    """services.shared.deadletter.Sender: keeps every record it was asked to send."""

    sent: list[Sent] = field(default_factory=list)

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any:
        self.sent.append(Sent(topic, key, value, None, headers))
