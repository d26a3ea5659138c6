"""A stateless batch stage inside a faust app: its own aiokafka consumer, `getmany` batches.

A faust agent pays faust's per-event stream machinery (several event-loop turns per
record). A stage that keeps no state need not: it runs as a mode Service started and stopped
with the faust app, reads its topic in batches with a consumer group of its own, hands each
batch to `handle` (which sends what the batch becomes and awaits the broker's
acknowledgements), and only then commits the batch's offsets: at least once. Used by the
escalation pack stage and the tension re-keying stage.
"""

from __future__ import annotations

from typing import Any

from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import TopicPartition
from mode import Service

from services.shared.kafka import make_consumer
from services.shared.logging import get_logger
from services.shared.settings import Settings

log = get_logger("muster.stage")


class BatchStage(Service):
    """Subclasses implement `handle(batch)`; more workers in the same group split the partitions."""

    def __init__(self, settings: Settings, topic: str, group: str, *, batch_max: int, within_ms: int,
                 consumer_options: dict[str, Any] | None = None, also: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.settings, self.topic, self.group = settings, topic, group
        self.topics = (topic, *also)  # `also`: further topics read in the same group and batches
        self.batch_max, self.within_ms = batch_max, within_ms
        self.consumer_options = consumer_options or {}
        self.consumer = None
        super().__init__(**kwargs)

    async def handle(self, batch: dict[TopicPartition, list]) -> None:
        """Send what the batch becomes and await it; raise to leave its offsets uncommitted."""
        raise NotImplementedError

    async def after_poll(self, batch: dict[TopicPartition, list]) -> None:
        """Called after every poll, the batch handled and committed (empty when nothing came)."""

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
            batch = await self.consumer.getmany(timeout_ms=self.within_ms, max_records=self.batch_max)
            if batch:
                await self.handle(batch)
                await self._commit(batch)
            await self.after_poll(batch)

    async def _commit(self, batch: dict[TopicPartition, list]) -> None:
        try:
            await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        except (CommitFailedError, IllegalStateError) as exc:  # revoked meanwhile: the new owner re-reads them
            log.warning("stage.commit_failed", group=self.group, reason=str(exc)[:200])
