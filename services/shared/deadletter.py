"""Dead letters: a record no processor could read goes to the dead-letter topic with the
source topic, partition, offset, error class and message. It never stops a partition.

One sink for every service: `DeadLetterSink` sends the letter through any `Sender` (an
aiokafka producer, or faust's through `FaustSender`), counts it on the service's
`muster_<service>_dead_letters_total{input, error_class}` (the same labels everywhere) and
logs one `dead_letter.sent` line (no key, no value: they may hold people's details).
"""

from __future__ import annotations

from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from services.shared.codec import encode
from services.shared.events import DeadLetter
from services.shared.logging import get_logger

log = get_logger("muster.deadletter")


class Sender(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any: ...


class Record(Protocol):
    """What a dead letter needs of a record: an aiokafka ConsumerRecord, a faust Message, a Row."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


class FaustSender:
    """send_and_wait in the Sender's shape, over a faust app's producer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any:
        return await self.app.producer.send_and_wait(topic, key, value, None, None, headers)


def dead_letters_counter(service: str, registry: CollectorRegistry = REGISTRY) -> Counter:
    """The service's dead-letter counter; every service has the same labels."""
    return Counter(
        f"muster_{service}_dead_letters_total",
        "Records sent to the dead-letter topic, by the input they were read from and the error class.",
        ["input", "error_class"],
        registry=registry,
    )


def _headers(headers: Any) -> Any:
    if headers is None:
        return ()
    return headers.items() if hasattr(headers, "items") else headers


class DeadLetterSink:
    """Where one service's unreadable records go."""

    def __init__(self, sender: Sender, topic: str, *, service: str, counter: Counter) -> None:
        self.sender, self.topic, self.service, self.counter = sender, topic, service, counter

    async def send(self, record: Record, error: BaseException | str, input_name: str) -> DeadLetter:
        """`input_name`: the topic id (or the service's name for an internal input) the record came from."""
        letter = DeadLetter.of(
            service=self.service, topic=record.topic, partition=record.partition, offset=record.offset,
            error=error, key=record.key, value=record.value, headers=_headers(record.headers),
        )
        encoded = encode(letter)
        await self.sender.send_and_wait(self.topic, encoded.value, key=encoded.key, headers=encoded.headers)
        self.counter.labels(input_name, letter.error_class).inc()
        log.warning("dead_letter.sent", service=self.service, input=input_name, topic=record.topic,
                    partition=record.partition, offset=record.offset, error_class=letter.error_class,
                    reason=letter.error[:300])
        return letter
