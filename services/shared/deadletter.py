"""Dead letters: a record no processor could read goes to the dead-letter topic with the
source topic, partition, offset, error class and message. It never stops a partition."""

from __future__ import annotations

from typing import Any, Protocol

from services.shared.codec import encode
from services.shared.events import DeadLetter


class Sender(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any: ...


async def send_dead_letter(
    producer: Sender, topic: str, *, service: str, source_topic: str, partition: int, offset: int,
    error: BaseException | str, key: bytes | None, value: bytes | None, headers: Any = (),
) -> DeadLetter:
    letter = DeadLetter.of(
        service=service, topic=source_topic, partition=partition, offset=offset,
        error=error, key=key, value=value, headers=headers,
    )
    encoded = encode(letter)
    await producer.send_and_wait(topic, encoded.value, key=encoded.key, headers=encoded.headers)
    return letter
