"""A stateless batch stage inside a faust app: its own aiokafka consumer, `getmany` batches.

A faust agent pays faust's per-event stream machinery (several event-loop turns per
record). A stage that keeps no state need not. The contract has two halves:

- the work (`Stage`): `handle(batch, sink)` turns one batch into records, sending them
  through the narrow `Sink` it is given (it never sees its service, producer or app), and
  awaits the broker's acknowledgements before it returns;
- the runner (`BatchStage`): a mode Service started and stopped with the faust app, reading
  its topic in batches with a consumer group of its own and committing a batch's offsets
  only after `handle` returned: at least once. More workers in the group split the
  partitions.

Used by the escalation pack stage (packer.py) and the tension re-keying stage (rekey.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from mode import Service

from services.shared.kafka import make_consumer
from services.shared.logging import get_logger
from services.shared.settings import Settings

log = get_logger("muster.stage")


@dataclass(frozen=True, slots=True)
class Batch:
    """One `getmany` of the stage's topic: records per partition, and how many partitions the
    topic has as the consumer sees it (0 before its metadata arrived)."""

    records: dict[TopicPartition, list]
    partitions: int
    # Only for a stage that asks (`at_end = True`): every partition assigned to this worker ->
    # read to its end (the position reached the high watermark of the last fetch), and the
    # partition count of every topic read.
    at_end: dict[TopicPartition, bool] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class Sink(Protocol):
    """All a stage may do with what it made."""

    async def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int | None = None,
                   headers: Any = None) -> asyncio.Future:
        """Hand a record to the producer; await the returned future for the broker's acknowledgement."""

    async def dead_letter(self, record: Any, error: BaseException | str, input_name: str) -> None:
        """A record nobody can read, to the dead-letter topic (never raises)."""


# A batch's dead letters sent at once (the producer batches them). One after the other, each
# awaiting its acknowledgement, a poison storm's batch of 5,000 took longer than the progress
# watchdog's limit (the soak of 2026-12-02); all 2,000 of a batch at once, their tasks and
# records were the tension worker's high-water mark in a storm, which the allocator kept.
DEAD_LETTERS_IN_FLIGHT = 500


def in_flight(items: list, n: int = DEAD_LETTERS_IN_FLIGHT) -> Iterator[list]:
    """`items` n at a time: what is sent together and awaited before the next."""
    for i in range(0, len(items), n):
        yield items[i:i + n]


async def dead_letter_all(sink: Sink, dead: list[tuple[Any, BaseException | str, str]]) -> None:
    """A batch's dead letters (record, error, input name), DEAD_LETTERS_IN_FLIGHT at a time."""
    for part in in_flight(dead):
        await asyncio.gather(*(sink.dead_letter(record, error, input_name) for record, error, input_name in part))


class Stage(Protocol):
    async def handle(self, batch: Batch, sink: Sink) -> None:
        """Send what the batch becomes and await it; raise to leave its offsets uncommitted."""

    # Optional: `commit_metadata(tp) -> str`, committed with the partition's offset after each
    # batch, for a stage that must take something up again where it left off (rekey.py).


class BatchStage(Service):
    """Runs a Stage over its topic; started with the faust app, stopped with it."""

    def __init__(self, settings: Settings, topic: str, group: str, work: Stage, sink: Sink, *, batch_max: int,
                 within_ms: int, consumer_options: dict[str, Any] | None = None, also: tuple[str, ...] = (),
                 **kwargs: Any) -> None:
        self.settings, self.topic, self.group = settings, topic, group
        self.topics = (topic, *also)  # `also`: further topics read in the same group and batches
        self.work, self.sink = work, sink
        self.batch_max, self.within_ms = batch_max, within_ms
        self.consumer_options = consumer_options or {}
        self.consumer = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.consumer = make_consumer(self.settings, *self.topics, group_id=self.group,
                                      max_poll_records=self.batch_max, **self.consumer_options)
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _consume(self) -> None:
        while not self.should_stop:
            records = await self.consumer.getmany(timeout_ms=self.within_ms, max_records=self.batch_max)
            wants_ends = getattr(self.work, "at_end", False)
            if records or wants_ends:
                partitions = len(self.consumer.partitions_for_topic(self.topic) or ())
                batch = Batch(records, partitions)
                if wants_ends:
                    batch = Batch(records, partitions, await self._at_end(), {
                        t: len(self.consumer.partitions_for_topic(t) or ()) for t in self.topics})
                await self.work.handle(batch, self.sink)  # an empty batch only for a stage that asks
                if records:
                    await self._commit(records)

    async def _at_end(self) -> dict[TopicPartition, bool]:
        out = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                out[tp] = await self.consumer.position(tp) >= highwater
        return out

    async def _commit(self, records: dict[TopicPartition, list]) -> None:
        offsets: dict = {tp: batch[-1].offset + 1 for tp, batch in records.items()}
        metadata = getattr(self.work, "commit_metadata", None)  # what the stage must find again at that offset
        if metadata is not None:
            offsets = {tp: OffsetAndMetadata(offset, metadata(tp)) for tp, offset in offsets.items()}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:  # revoked meanwhile: the new owner re-reads them
            log.warning("stage.commit_failed", group=self.group, reason=str(exc)[:200])
