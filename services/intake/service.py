"""Accepting events: idempotency lookup, publish with the ack bound, remember the result.

Only the broker's acknowledgement makes an event accepted; the result is recorded in the
idempotency store before the caller hears it, so the same event_id later returns it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from aiokafka.structs import RecordMetadata

from services.intake.metrics import IntakeMetrics
from services.intake.ports import IdempotencyStorePort, PublisherPort
from services.intake.repository import Accepted, StoreUnavailable
from services.intake.validation import Rejection
from services.shared.events import IncidentEvent
from services.shared.logging import get_logger

log = get_logger("intake.service")


class Unavailable(RuntimeError):
    """The broker or the idempotency store could not confirm in time: answer 503."""


@dataclass(frozen=True, slots=True)
class ItemResult:
    index: int
    accepted: Accepted | None = None
    rejection: Rejection | None = None
    event_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None


class IntakeService:
    def __init__(self, publisher: PublisherPort, store: IdempotencyStorePort, metrics: IntakeMetrics, timeout_s: float) -> None:
        self._publisher = publisher
        self._store = store
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._inflight: dict[uuid.UUID, asyncio.Future[Accepted]] = {}
        self._background: set[asyncio.Task] = set()

    async def submit(self, event: IncidentEvent, *, fresh: bool = False) -> Accepted:
        """One event: its original result if already published, else publish and record it.
        `fresh`: intake minted the event_id just now, so it cannot have been seen before."""
        if fresh:
            return await self._publish_new(event, fresh=True)
        running = self._inflight.get(event.event_id)
        if running is not None:  # the same event_id is being published right now: share its outcome
            return await asyncio.shield(running)
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "exception never retrieved"
        self._inflight[event.event_id] = future
        try:
            result = await self._submit(event)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else Unavailable("cancelled"))
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[event.event_id]

    async def _submit(self, event: IncidentEvent) -> Accepted:
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await self._store.lookup(event.event_id)
        except (StoreUnavailable, TimeoutError) as exc:
            raise Unavailable(f"idempotency store did not answer: {exc}") from None
        if found is not None:
            self._metrics.events.labels("duplicate").inc()
            _log_accepted(found, "duplicate")
            return found
        return await self._publish_new(event)

    async def _publish_new(self, event: IncidentEvent, fresh: bool = False) -> Accepted:
        [outcome] = await self._publisher.publish([event])
        if isinstance(outcome, BaseException):
            raise Unavailable(str(outcome))
        accepted = self._accepted(event, outcome)
        if fresh:
            self._store.record_soon(accepted)
        else:
            await self._remember([accepted])
        self._metrics.events.labels("published").inc()
        _log_accepted(accepted, "published")
        return accepted

    async def submit_batch(
        self, items: list[IncidentEvent | Rejection], fresh: frozenset[uuid.UUID] = frozenset()
    ) -> list[ItemResult]:
        """Every item gets a result; valid items are published even when others are rejected.
        `fresh`: event_ids intake minted just now, which need no lookup."""
        valid = [(i, item) for i, item in enumerate(items) if not isinstance(item, Rejection)]
        seen_before = list({e.event_id for _, e in valid} - fresh)
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await self._store.lookup_many(seen_before) if seen_before else {}
        except (StoreUnavailable, TimeoutError) as exc:
            raise Unavailable(f"idempotency store did not answer: {exc}") from None
        new: dict[uuid.UUID, IncidentEvent] = {}
        for _, event in valid:
            if event.event_id not in found:
                new.setdefault(event.event_id, event)
        if new and not self._publisher.connected:
            raise Unavailable("not connected to the broker")
        events = list(new.values())
        outcomes = await self._publisher.publish_batch(events) if events else []
        published = [self._accepted(e, o) for e, o in zip(events, outcomes) if not isinstance(o, BaseException)]
        if events and not published:
            raise Unavailable(str(outcomes[0]))
        failed = {e.event_id: o for e, o in zip(events, outcomes) if isinstance(o, BaseException)}
        await self._remember(published)
        self._metrics.events.labels("published").inc(len(published))
        results = {a.event_id: a for a in published} | found
        out = []
        for index, item in enumerate(items):
            if isinstance(item, Rejection):
                out.append(ItemResult(index, rejection=item))
            elif item.event_id in failed:
                rejection = Rejection(503, "unavailable", (("(event)", str(failed[item.event_id])),))
                out.append(ItemResult(index, rejection=rejection, event_id=item.event_id, incident_id=item.incident_id))
            else:
                out.append(ItemResult(index, accepted=results[item.event_id]))
        duplicates = sum(1 for _, e in valid if e.event_id in found)
        self._metrics.events.labels("duplicate").inc(duplicates)
        log.info("batch accepted", items=len(items), published=len(published), duplicates=duplicates,
                 rejected=len(items) - len(valid) + len(failed),
                 partitions=sorted({a.partition for a in published}))
        return out

    def on_late_ack(self, event: IncidentEvent, metadata: RecordMetadata) -> None:
        """The broker acknowledged after we answered 503: remember it for the retry."""
        task = asyncio.get_running_loop().create_task(self._remember([self._accepted(event, metadata)]))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _remember(self, accepted: list[Accepted]) -> None:
        if not accepted:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                if len(accepted) == 1:
                    await self._store.record(accepted[0])
                else:
                    await self._store.record_many(accepted)
        except (StoreUnavailable, TimeoutError) as exc:
            # The broker has the events, so the caller hears 2xx; only a retry could duplicate them.
            log.error("idempotency store write failed", count=len(accepted), error=str(exc))

    def _accepted(self, event: IncidentEvent, metadata: RecordMetadata) -> Accepted:
        return Accepted(
            event_id=event.event_id,
            incident_id=event.incident_id,
            event_type=event.event_type,
            topic=metadata.topic,
            partition=metadata.partition,
            offset=metadata.offset,
        )


def _log_accepted(accepted: Accepted, outcome: str) -> None:
    """The canonical line of one accepted event: ids and where it is, never its content."""
    log.info("event accepted", outcome=outcome, event_id=str(accepted.event_id),
             incident_id=str(accepted.incident_id), event_type=accepted.event_type,
             topic=accepted.topic, partition=accepted.partition, offset=accepted.offset)
