"""Publishing events to the incidents topic with an acknowledgement bound.

The producer is acks=all and idempotent (services.shared.kafka.make_producer). It is
started in the background and retried until the broker answers, so intake serves (and
answers 503) while the broker is down, and recovers by itself when it is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime

import orjson

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata, TopicPartition

from services.shared.codec import NEWER_VERSION_HEADER, Encoded, editions, encode, header
from services.shared.events import Event, IncidentEvent
from services.shared.kafka import keyed_partitioner, make_consumer, make_producer, partition_for, partitions_for
from services.shared.logging import get_logger
from services.shared.settings import Settings

log = get_logger("intake.publisher")


# Batch requests encoding and handing record batches to the producer at once (the rest wait their turn).
HANDOVERS = 2
# A record the broker did not acknowledge within the bound (the client heard 503) stays in
# the producer and may still be acknowledged. Until then, and this long after, a retry of
# the same event_id waits for that record instead of publishing a second copy (found by
# `muster chaos`: a broker restart of ~50 s turned every retry into another copy on the topic).
LATE_GRACE_S = 120.0


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge in time (or is not connected): answer 503."""


class Publisher:
    def __init__(
        self,
        settings: Settings,
        topic: str,
        on_latency: Callable[[float], None] = lambda s: None,
        on_late_ack: Callable[[IncidentEvent, RecordMetadata], None] = lambda e, m: None,
    ) -> None:
        self.topic = topic
        self._on_late_ack = on_late_ack
        self._settings = settings
        self._timeout_s = settings.intake_publish_timeout_s
        self._on_latency = on_latency
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task | None = None
        self._handover = asyncio.Semaphore(HANDOVERS)
        self._late: dict[uuid.UUID, tuple[asyncio.Future[RecordMetadata], int]] = {}  # event_id -> (future, relative)

    def _hold_late(self, event_id: uuid.UUID, future: asyncio.Future, relative: int) -> None:
        """Remember a record still at the producer after its request answered 503."""
        if event_id in self._late:
            return
        self._late[event_id] = (future, relative)
        loop = asyncio.get_running_loop()

        def release(f: asyncio.Future) -> None:
            failed = f.cancelled() or f.exception() is not None
            loop.call_later(0 if failed else LATE_GRACE_S,
                            lambda: self._late.get(event_id, (None, 0))[0] is f and self._late.pop(event_id, None))

        future.add_done_callback(release)

    def _held(self, event_id: uuid.UUID) -> tuple[asyncio.Future[RecordMetadata], int] | None:
        """The earlier copy of this event still at (or acknowledged by) the producer, if any."""
        held = self._late.get(event_id)
        if held is None:
            return None
        future = held[0]
        if future.done() and (future.cancelled() or future.exception() is not None):
            return None  # it failed: publish anew
        return held

    @staticmethod
    def _derived(future: asyncio.Future, relative: int) -> asyncio.Future[RecordMetadata]:
        """A future of one record's metadata from its batch's future."""
        out: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()

        def settle(f: asyncio.Future) -> None:
            if out.done():
                return
            if f.cancelled():
                out.cancel()
            elif f.exception() is not None:
                out.set_exception(f.exception())
            else:
                out.set_result(_at(f.result(), relative))

        if future.done():
            settle(future)
        else:
            future.add_done_callback(settle)
        return out

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect within the bound if the broker answers; otherwise keep trying in the background."""
        self._connector = asyncio.create_task(self._connect())
        try:
            await asyncio.wait_for(asyncio.shield(self._connector), self._timeout_s)
        except asyncio.TimeoutError:
            log.warning("broker not reachable yet; retrying in the background", bootstrap=self._settings.kafka_bootstrap)

    async def stop(self) -> None:
        if self._connector is not None and not self._connector.done():
            self._connector.cancel()
            await asyncio.gather(self._connector, return_exceptions=True)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def _connect(self) -> None:
        delay = 0.2
        while True:
            producer = make_producer(
                self._settings, request_timeout_ms=int(self._timeout_s * 1000),
                partitioner=keyed_partitioner,  # aiokafka's own murmur2 is byte by byte (2-3 % of a single request)
            )
            try:
                await producer.start()
            except Exception as exc:  # noqa: BLE001 - any failure to connect: retry
                await producer.stop()
                log.info("broker connect failed; retrying", error=exc.__class__.__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            log.info("producer connected", topic=self.topic)
            return

    async def reachable(self) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), min(self._timeout_s, 3.0))
            return True
        except Exception:  # noqa: BLE001 - any failure means not reachable
            return False

    async def enqueue(self, event: IncidentEvent) -> asyncio.Future[RecordMetadata]:
        """Hand one event to the producer; the returned future resolves on the broker's ack."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker")
        held = self._held(event.event_id)
        if held is not None:  # an earlier copy is still at the producer: never a second one
            return self._derived(*held)
        records = editions(event)
        started = time.perf_counter()
        futures = [await producer.send(self.topic, r.value, key=r.key, headers=r.headers) for r in records]
        future = futures[0] if len(futures) == 1 else _first_when_all(futures)
        future.add_done_callback(lambda f: f.cancelled() or f.exception() or self._on_latency(time.perf_counter() - started))
        return future

    async def find(self, event: IncidentEvent, since: datetime) -> RecordMetadata | None:
        """Where the event landed on the topic if a copy written since `since` is there (None: it is
        not); BrokerUnavailable when the broker cannot say within the bound."""
        [found] = await self.find_many([(event, since)])
        return found

    async def find_many(self, wanted: list[tuple[IncidentEvent, datetime]],
                        timeout_s: float | None = None) -> list[RecordMetadata | None]:
        """`find` for many events at once: one consumer, each partition read once from the earliest
        `since` of the events on it (a batch retried after its publish timed out asks for all of its
        events: one after the other, each with a consumer of its own, it outlasted any request bound).
        BrokerUnavailable when the broker cannot say within `timeout_s` (default twice the ack bound)."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker")
        if not wanted:
            return []
        try:
            async with asyncio.timeout(self._timeout_s * 2 if timeout_s is None else timeout_s):
                partitions = sorted(await producer.partitions_for(self.topic))
                return await find_on_topic(self._settings, self.topic, partitions, wanted)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise BrokerUnavailable(f"could not look for an earlier copy: {type(exc).__name__}") from None

    async def publish_to(self, topic: str, event: Event) -> RecordMetadata:
        """One event to another topic (the tension calendar), acknowledged within the bound."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker")
        encoded = encode(event)
        try:
            future = await producer.send(topic, encoded.value, key=encoded.key, headers=encoded.headers)
            return await asyncio.wait_for(future, self._timeout_s)
        except (asyncio.TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(f"the broker did not acknowledge in time: {type(exc).__name__}") from None

    async def publish_batch(self, events: list[IncidentEvent]) -> list[RecordMetadata | BaseException]:
        """Many events at once: grouped by partition into record batches (one future per batch,
        not per event), partitioned exactly as the producer partitions single sends."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker")
        started = time.perf_counter()
        sent: list[tuple[asyncio.Future, list[tuple[int, int]]]] = []  # batch future, [(index, relative offset)]
        outcomes: list[RecordMetadata | BaseException] = [BrokerUnavailable("not handed to the producer in time")] * len(events)
        for index, event in enumerate(events if self._late else ()):  # earlier copies still at the producer: wait for those
            held = self._held(event.event_id)
            if held is not None:
                sent.append((self._derived(*held), [(index, 0)]))
        waiting = {index for _, members in sent for index, _ in members}
        try:
            async with asyncio.timeout(self._timeout_s):
                partitions = sorted(await producer.partitions_for(self.topic))
                # Requests take turns encoding and handing their record batches over: aiokafka's
                # add_batch gives up (KafkaTimeoutError) long before its timeout when many batches
                # queue on one partition, so the queue is kept here, inside this request's bound;
                # and encoding a thousand events is a stretch of CPU that many requests at once
                # would hold the event loop with (the batch's validation and checks take
                # IntakeService's turns, not held while waiting for the broker).
                async with self._handover:
                    records: list[tuple[int, Encoded]] = []
                    for index, event in enumerate(events):
                        if index in waiting:
                            continue
                        # an older schema version still produced follows its event (same key: same partition)
                        for edition, encoded in enumerate(editions(event)):
                            records.append((index if edition == 0 else -1, encoded))
                    by_partition: dict[int, list[tuple[int, Encoded]]] = {}
                    for partition, record in zip(partitions_for([r[1].key for r in records], partitions), records):
                        by_partition.setdefault(partition, []).append(record)
                    for partition, items in by_partition.items():
                        builder, members = producer.create_batch(), []
                        for index, encoded in items:
                            appended = builder.append(key=encoded.key, value=encoded.value, timestamp=None,
                                                      headers=encoded.headers)
                            if appended is None:  # full: send it, start the next
                                sent.append((await self._send_batch(producer, builder, partition), members))
                                builder, members = producer.create_batch(), []
                                appended = builder.append(key=encoded.key, value=encoded.value, timestamp=None,
                                                          headers=encoded.headers)
                            if index >= 0:  # an event's own record: its outcome is the event's
                                members.append((index, appended.offset))
                        sent.append((await self._send_batch(producer, builder, partition), members))
                await asyncio.wait([future for future, _ in sent])
        except TimeoutError:
            pass
        for future, members in sent:
            if not future.done():
                future.add_done_callback(lambda f, m=members: self._late_batch(f, [(events[i], r) for i, r in m]))
                for index, relative in members:
                    self._hold_late(events[index].event_id, future, relative)
                outcome: RecordMetadata | BaseException = BrokerUnavailable(
                    f"broker did not acknowledge within {self._timeout_s:g}s"
                )
            else:
                outcome = _settled(future)
            for index, relative in members:
                outcomes[index] = outcome if isinstance(outcome, BaseException) else _at(outcome, relative)
        if sent and all(f.done() and not f.cancelled() and f.exception() is None for f, _ in sent):
            self._on_latency(time.perf_counter() - started)
        return outcomes

    async def _send_batch(self, producer: AIOKafkaProducer, builder, partition: int) -> asyncio.Future:
        """Hand one record batch over; a producer that refuses it gives a failed future (its events: 503)."""
        try:
            return await producer.send_batch(builder, self.topic, partition=partition)
        except KafkaError as exc:
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(BrokerUnavailable(f"producer refused the batch: {exc.__class__.__name__}"))
            return failed

    def _late_batch(self, future: asyncio.Future, members: list[tuple[IncidentEvent, int]]) -> None:
        if not future.cancelled() and future.exception() is None:
            for event, relative in members:
                self._on_late_ack(event, _at(future.result(), relative))

    async def publish(self, events: list[IncidentEvent]) -> list[RecordMetadata | BaseException]:
        """Publish events; each gets its metadata or the reason it was not acknowledged in time."""
        futures: list[asyncio.Future[RecordMetadata] | BaseException] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                for event in events:
                    futures.append(await self.enqueue(event))
                pending = [f for f in futures if isinstance(f, asyncio.Future)]
                if pending:
                    await asyncio.wait(pending)
        except TimeoutError:
            pass
        except (BrokerUnavailable, KafkaError) as exc:  # not connected, or the producer refused it
            failure = exc if isinstance(exc, BrokerUnavailable) else BrokerUnavailable(
                f"producer refused the event: {exc.__class__.__name__}")
            futures += [failure] * (len(events) - len(futures))
        futures += [BrokerUnavailable("not handed to the producer in time")] * (len(events) - len(futures))
        return [self._outcome(e, f) for e, f in zip(events, futures)]

    def _outcome(
        self, event: IncidentEvent, future: asyncio.Future[RecordMetadata] | BaseException
    ) -> RecordMetadata | BaseException:
        if isinstance(future, BaseException):
            return future
        if not future.done():
            # The client hears 503; should the broker still acknowledge later, remember it so
            # that the client's retry with the same event_id does not publish it twice.
            future.add_done_callback(
                lambda f: None if f.cancelled() or f.exception() else self._on_late_ack(event, f.result())
            )
            self._hold_late(event.event_id, future, 0)
            return BrokerUnavailable(f"broker did not acknowledge within {self._timeout_s:g}s")
        return _settled(future)


# How far before a pending claim's time `find` starts looking: the claim's time is the database's
# clock, a record's timestamp the producer's (this host's); they may differ a little.
CLOCK_SKEW_S = 30.0


async def find_on_topic(settings: Settings, topic: str, partitions: list[int],
                        wanted: list[tuple[IncidentEvent, datetime]]) -> list[RecordMetadata | None]:
    """Where each event (its own record, not an older-version copy) landed on `topic`, if it is there
    among the records written since its `since`: the partitions their keys give are each read once,
    from the earliest of their times to the partition's end offset now. For the retries of events
    whose publisher died (or timed out) before recording them (a rare path: short reads, no group)."""
    by_partition: dict[int, dict[str, tuple[int, bytes, int]]] = {}  # partition -> event_id -> (index, key, from ms)
    for index, (event, since) in enumerate(wanted):
        key = encode(event).key
        start_ms = max(int((since.timestamp() - CLOCK_SKEW_S) * 1000), 0)
        by_partition.setdefault(partition_for(key, partitions), {})[str(event.event_id)] = (index, key, start_ms)
    found: list[RecordMetadata | None] = [None] * len(wanted)
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = {p: TopicPartition(topic, p) for p in by_partition}
        consumer.assign(list(tps.values()))
        starts = await consumer.offsets_for_times(
            {tps[p]: min(start for _, _, start in events.values()) for p, events in by_partition.items()})
        ends = await consumer.end_offsets(list(tps.values()))
        for partition, events in by_partition.items():
            tp, end = tps[partition], ends[tps[partition]]
            if starts[tp] is None:  # nothing written since then
                continue
            consumer.seek(tp, starts[tp].offset)
            left = dict(events)
            while left and await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=2000)
                for m in batch.get(tp, []):
                    if m.offset >= end:
                        break
                    if m.value is None or header(m.headers, NEWER_VERSION_HEADER) is not None:
                        continue
                    for event_id, (index, key, start_ms) in list(left.items()):
                        if (m.key == key and m.timestamp >= start_ms and event_id.encode() in m.value
                                and orjson.loads(m.value).get("event_id") == event_id):
                            found[index] = RecordMetadata(topic, partition, tp, m.offset, m.timestamp,
                                                          m.timestamp_type, -1)
                            del left[event_id]
                            break
        return found
    finally:
        await consumer.stop()


def _first_when_all(futures: list[asyncio.Future[RecordMetadata]]) -> asyncio.Future[RecordMetadata]:
    """The first record's metadata once every record of the event is acknowledged (or the first failure)."""
    done: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()

    def settle(gathered: asyncio.Future) -> None:
        if done.done():
            return
        if gathered.cancelled():
            done.cancel()
        elif gathered.exception() is not None:
            done.set_exception(gathered.exception())
        else:
            done.set_result(gathered.result()[0])

    asyncio.gather(*futures).add_done_callback(settle)
    return done


def _at(batch: RecordMetadata, relative: int) -> RecordMetadata:
    """One record's metadata from its batch's (base offset + its place in the batch); built
    directly, a third of what namedtuple's _replace costs, once per batched event."""
    return RecordMetadata(batch.topic, batch.partition, batch.topic_partition, batch.offset + relative,
                          batch.timestamp, batch.timestamp_type, batch.log_start_offset)


def _settled(future: asyncio.Future[RecordMetadata]) -> RecordMetadata | BaseException:
    if future.cancelled():
        return BrokerUnavailable("publish cancelled")
    exc = future.exception()
    if isinstance(exc, BrokerUnavailable):
        return exc
    return BrokerUnavailable(f"broker refused: {exc.__class__.__name__}") if exc else future.result()
