"""The projector loop: a plain aiokafka consumer whose offsets live in PostgreSQL.

- `enable_auto_commit=False` and nothing is ever committed to Kafka: on every assignment
  the rebalance listener reads the stored offsets and seeks to them;
- `getmany()` batches; each batch is one transaction holding its rows and its offsets;
- a poison record is dead-lettered with the reason and its offset advances with the batch;
- a database outage is not poison: the partitions are paused and the same batch is
  retried with backoff until it commits; nothing is dead-lettered or skipped;
- a batch the database refuses for another reason is split record by record, and only the
  record it refuses is dead-lettered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from services.projector import metrics, repository
from services.projector.ports import StatusStorePort
from services.projector.handlers import Batch, Position, stage
from services.shared.codec import PoisonRecord, decode, detached, superseded
from services.shared.db import role_dsn
from services.shared.deadletter import DeadLetterSink
from services.shared.kafka import make_consumer, make_producer
from services.shared.logging import get_logger
from services.shared.settings import Settings
from services.shared.stage import DEAD_LETTERS_IN_FLIGHT
from services.shared.topics import TopicCatalog

log = get_logger("muster.projector")

SERVICE = "projector"
PROJECTOR_ROLE = "muster_projector"
YIELD_EVERY = 200  # records decoded between turns of the event loop
DEAD_LETTER_BATCH_BYTES = 512 * 1024

# What the consumer holds fetched but not yet handed to a batch. aiokafka keeps each fetch
# response's record batches, as received, until getmany() has taken every record of them: at most
# one response per broker, at most FETCH_MAX_BYTES, each partition's part of it at most
# PARTITION_FETCH_BYTES (issue 17: with 4 MiB a partition and aiokafka's 50 MiB a response, a poison
# storm's backlog kept up to 24 MiB of the six incidents partitions buffered, 50 MiB over all 26).
PARTITION_FETCH_BYTES = 1024 * 1024
FETCH_MAX_BYTES = 8 * 1024 * 1024

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now (starting up)
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.exceptions.InsufficientResourcesError,
)


def source_topics(catalog: TopicCatalog) -> list[str]:
    """The incidents topic, both all-agencies escalation topics, both tension alert topics and
    the tension calendar (planned events, silences) and casework's cases and alerts."""
    return [
        catalog.name("incidents"),
        catalog.escalation_topic(None, exercise=False),
        catalog.escalation_topic(None, exercise=True),
        catalog.name("tension.alerts"),
        catalog.name("tension.alerts.exercise"),
        catalog.name("casework.cases"),
        catalog.name("casework.alerts"),
        catalog.name("tension.calendar"),
    ]


async def build_batch(records: list[ConsumerRecord], carries: Mapping[str, frozenset[str]], on_poison=None) -> Batch:
    """Decode and stage; a record that cannot be decoded, or whose event type topics.yaml does not
    put on the topic it came from (`carries`: TopicCatalog.carries()), only advances its offset
    (and goes to on_poison): a derived event written to the wrong topic is never applied.

    The batch's poison records go to on_poison DEAD_LETTERS_IN_FLIGHT at a time (held meanwhile
    with their reason only), and all of them before this returns (so before the batch's offsets
    can commit); an on_poison that raises fails the build. One at a time, a dead letter's round trip (about 15 ms) held a poison storm's
    partitions to some 65 records a second, and its backlog in memory for minutes (issue 17)."""
    batch = Batch()
    poison: list[tuple[ConsumerRecord, PoisonRecord]] = []
    for n, record in enumerate(records, 1):
        if n % YIELD_EVERY == 0:  # let the batch being written send its next statement: keep the database busy
            await asyncio.sleep(0)
        pos = Position(record.topic, record.partition, record.offset)
        if superseded(record.headers):  # an older-version copy of a fact read in its newer version
            batch.advance(pos)
            continue
        try:
            event = decode(record.value)
            if event.event_type not in carries.get(record.topic, ()):
                raise PoisonRecord(f"event type {event.event_type} does not belong on topic {record.topic} "
                                   f"(topics.yaml: {', '.join(sorted(carries.get(record.topic, ()))) or 'not read'})")
        except PoisonRecord as exc:
            if on_poison is not None:
                poison.append((record, detached(exc)))
                if len(poison) >= DEAD_LETTERS_IN_FLIGHT:
                    await _send_all(on_poison, poison)
            batch.advance(pos)
            continue
        stage(batch, event, record.value.decode(), pos)
    await _send_all(on_poison, poison)
    return batch


async def _send_all(on_poison, poison: list[tuple[ConsumerRecord, PoisonRecord]]) -> None:
    """Send the dead letters at once, wait for all of them, and forget them."""
    if poison:
        await asyncio.gather(*(on_poison(record, exc) for record, exc in poison))
        poison.clear()


class Projector:
    def __init__(self, settings: Settings, store: StatusStorePort | None = None) -> None:
        self.settings = settings
        self.catalog = TopicCatalog.from_settings(settings)
        self.topics = source_topics(self.catalog)
        self.carries = self.catalog.carries()
        self.group = settings.projector_consumer_group
        self.dsn = role_dsn(settings, PROJECTOR_ROLE, settings.projector_database_url)  # writes, owns nothing
        self.store = store or repository.StatusStore(self.dsn)
        self.consumer = None
        self.producer = None
        self.stopping = asyncio.Event()
        self.batches = 0
        self.records_read = 0
        self.running = False
        self.writing: asyncio.Task | None = None  # the batch being written, at most one

    # --- database, with retry ---------------------------------------------------------------

    async def _retrying(self, what: str, fn):
        """Run fn(store) until the database answers; a transient failure is waited out, never skipped."""
        attempt = 0
        while True:
            try:
                result = await fn(self.store)
                if attempt and self.consumer is not None and self.consumer.paused():
                    self.consumer.resume(*self.consumer.paused())
                    log.info("database back, resumed", what=what, attempts=attempt)
                return result
            except TRANSIENT as exc:
                metrics.DB_RETRIES.inc()
                await self.store.reset()
                delay = self._backoff(attempt)
                log.warning("database unavailable, retrying", what=what, error_class=type(exc).__name__,
                            attempt=attempt, retry_in=round(delay, 2))
                if self.consumer is not None and self.consumer.assignment():
                    self.consumer.pause(*self.consumer.assignment())
                await asyncio.sleep(delay)
                attempt += 1

    async def stored_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Read on a connection of its own: a rebalance may come while a batch is being written."""
        attempt = 0
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                try:
                    stored = await repository.stored_offsets(conn, self.group, self.topics)
                finally:
                    await conn.close()
                break
            except TRANSIENT as exc:
                metrics.DB_RETRIES.inc()
                log.warning("database unavailable, retrying", what="read offsets", error_class=type(exc).__name__,
                            attempt=attempt)
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
        return {tp: stored[(tp.topic, tp.partition)] for tp in partitions if (tp.topic, tp.partition) in stored}

    def _backoff(self, attempt: int) -> float:
        return min(self.settings.projector_retry_max_seconds, 0.1 * 2**attempt) * random.uniform(0.8, 1.2)

    # --- the loop ---------------------------------------------------------------------------

    def consumer_options(self) -> dict:
        """The consumer's options beside make_consumer's: group timing and the fetch bounds."""
        options = {
            "session_timeout_ms": 10_000, "heartbeat_interval_ms": 1_000,
            # aiokafka keeps one fetch in flight: a long poll on idle partitions (the tension and
            # escalation topics) would hold back the refetch of the busy ones for fetch_max_wait_ms.
            "fetch_max_wait_ms": 50,
            "max_partition_fetch_bytes": PARTITION_FETCH_BYTES, "fetch_max_bytes": FETCH_MAX_BYTES,
        }
        if self.settings.projector_instance_id:
            options["group_instance_id"] = self.settings.projector_instance_id
        return options

    async def run(self) -> None:
        # Only dead letters go through it: a batch of them (DEAD_LETTERS_IN_FLIGHT, ~700 bytes each) in one
        # request, not aiokafka's 16 KiB (about 25 letters a round trip: a poison storm drained at ~100/s).
        self.producer = make_producer(self.settings, max_batch_size=DEAD_LETTER_BATCH_BYTES)
        self.consumer = make_consumer(self.settings, group_id=self.group, **self.consumer_options())
        self.consumer.subscribe(self.topics, listener=_SeekToStored(self))
        await self.producer.start()
        await self.consumer.start()
        self.running = True
        log.info("projector started", group=self.group, topics=self.topics)
        try:
            while not self.stopping.is_set():
                fetched = await self.consumer.getmany(
                    timeout_ms=200, max_records=self.settings.projector_batch_max_records
                )
                records = [r for rs in fetched.values() for r in rs]
                if not records:
                    continue
                # Decode this batch while the previous one commits; writes stay strictly in order.
                started = time.perf_counter()
                batch = await self.build(records, dead_letter=True)
                await self.drain()
                kept = self._still_assigned(records)
                if len(kept) < len(records):  # revoked meanwhile: the new owner writes those
                    records, batch = kept, await self.build(kept, dead_letter=False)
                if records:
                    self.writing = asyncio.create_task(self.write(records, batch, started))
            await self.drain()
        finally:
            self.running = False
            if self.writing is not None and not self.writing.done():
                self.writing.cancel()
            await self.consumer.stop()
            await self.producer.stop()
            await self.store.reset()
            log.info("projector stopped", group=self.group, batches=self.batches)

    def stop(self) -> None:
        self.stopping.set()

    async def drain(self) -> None:
        """Wait for the batch being written (if any) to commit."""
        if self.writing is not None:
            await self.writing

    def _still_assigned(self, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        assigned = self.consumer.assignment()
        return [r for r in records if TopicPartition(r.topic, r.partition) in assigned]

    def ready(self) -> bool:
        """/readyz: consuming, not stopping, not paused for an unavailable database."""
        paused = self.consumer is not None and bool(self.consumer.paused())
        return self.running and not self.stopping.is_set() and not paused

    async def write(self, records: list[ConsumerRecord], batch: Batch, started: float) -> None:
        """One batch in one transaction, retried while the database is unavailable."""
        try:
            written = await self._retrying(
                "write batch", lambda store: store.write_batch(batch, self.group)
            )
        except asyncpg.PostgresError as exc:  # refused, not unavailable: find the record it refuses
            log.warning("batch refused, applying record by record", error_class=type(exc).__name__)
            written = repository.Written()
            for record in records:
                one = await self.isolate(record)
                written.applied.update(one.applied)
                written.facts += one.facts
                written.refused += one.refused
        await self.dead_letter_refused(records, written)
        self._observe(records, batch, written, time.perf_counter() - started)

    async def dead_letter_refused(self, records: list[ConsumerRecord], written: repository.Written) -> None:
        """Facts services.shared.admission kept out of the store (their offsets advanced with the batch)."""
        if not written.refused:
            return
        by_position = {(r.topic, r.partition, r.offset): r for r in records}
        for position, why in written.refused:
            metrics.IGNORED.labels(why.reason).inc()
            record = by_position.get(position)
            if record is not None:
                await self.dead_letter(record, str(why))

    async def isolate(self, record: ConsumerRecord) -> repository.Written:
        batch = await self.build([record], dead_letter=False)
        try:
            return await self._retrying("write record", lambda store: store.write_batch(batch, self.group))
        except asyncpg.PostgresError as exc:
            await self.dead_letter(record, f"the status store refused it: {exc}")
            only_offset = Batch()
            only_offset.advance(Position(record.topic, record.partition, record.offset))
            return await self._retrying(
                "write offset", lambda store: store.write_batch(only_offset, self.group)
            )

    async def build(self, records: list[ConsumerRecord], *, dead_letter: bool) -> Batch:
        return await build_batch(records, self.carries, self.dead_letter if dead_letter else None)

    async def dead_letter(self, record: ConsumerRecord, error: BaseException | str) -> None:
        sink = DeadLetterSink(self.producer, self.catalog.name("deadletter"), service=SERVICE,
                              counter=metrics.DEAD_LETTERS)
        await sink.send(record, error, self.catalog.id_of(record.topic))

    def _observe(self, records: list[ConsumerRecord], batch: Batch, written: repository.Written, took: float) -> None:
        self.batches += 1
        self.records_read += len(records)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_DURATION.observe(took)
        for event_type, n in written.applied.items():
            metrics.RECORDS_APPLIED.labels(event_type).inc(n)
        if written.facts:  # one observation per batch: its oldest fact, the worst lag in it
            oldest = min(f.recorded_at for f in written.facts)
            metrics.APPLY_LAG.observe((datetime.now(timezone.utc) - oldest).total_seconds())
        assigned = self.consumer.assignment()
        for (topic, partition), next_offset in batch.offsets.items():
            tp = TopicPartition(topic, partition)
            high = self.consumer.highwater(tp) if tp in assigned else None  # revoked during the write
            if high is not None:
                metrics.CONSUMER_LAG.labels(self.group, topic, str(partition)).set(max(0, high - next_offset))
        log.info("batch applied", records=len(records), applied=sum(written.applied.values()),
                 partitions=len(batch.offsets), seconds=round(took, 4),
                 last_offsets={f"{topic}[{partition}]": nxt - 1 for (topic, partition), nxt in batch.offsets.items()})


class _SeekToStored(ConsumerRebalanceListener):
    """On every assignment: read the stored offsets from PostgreSQL and seek to them."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    async def on_partitions_revoked(self, revoked) -> None:
        """Nothing to commit (offsets live with the rows), but the batch being written must commit
        before the partitions move: their next owner reads the offsets it stores."""
        try:
            await self.projector.drain()
        except Exception:  # noqa: BLE001 - the run loop reports it; the rebalance must go on
            log.warning("batch in flight failed during a rebalance")

    async def on_partitions_assigned(self, assigned) -> None:
        consumer = self.projector.consumer
        # aiokafka installs the assignment (and may start fetching from the reset position)
        # before this callback returns: hold the partitions until they point at the stored offsets.
        consumer.pause(*assigned)
        stored = await self.projector.stored_offsets(assigned)
        fresh = [tp for tp in assigned if tp not in stored]
        for tp, offset in stored.items():
            consumer.seek(tp, offset)
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        consumer.resume(*assigned)
        log.info("partitions assigned", group=self.projector.group, stored=len(stored), from_start=len(fresh))
