"""Fakes of the project's own interfaces, for unit tests. Each implements the same Protocol
as the real adapter; where the adapter has a contract suite (tests/contract/), the fake runs
the same suite, so it cannot drift."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
    """services.shared.stage.Sink (tests/contract/sink.py): keeps what a stage sends and
    dead-letters. `gate`: when set, acknowledgements wait for it; `failure`: the broker
    refuses every record (its future fails; nothing is kept)."""

    sent: list[Sent] = field(default_factory=list)  # acknowledged
    handed: list[Sent] = field(default_factory=list)  # handed over, acknowledged or not (yet)
    dead: list[tuple[Any, BaseException | str, str]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    failure: BaseException | None = None

    async def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int | None = None,
                   headers: Any = None) -> asyncio.Future:
        self.handed.append(Sent(topic, key, value, partition, headers))
        return asyncio.ensure_future(self._acknowledge(self.handed[-1]))

    async def _acknowledge(self, record: Sent) -> Sent:
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        self.sent.append(record)
        return record

    async def dead_letter(self, record: Any, error: BaseException | str, input_name: str) -> None:
        self.dead.append((record, error, input_name))


@dataclass
class RecordingSender:
    """services.shared.deadletter.Sender: keeps every record it was asked to send."""

    sent: list[Sent] = field(default_factory=list)

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any:
        self.sent.append(Sent(topic, key, value, None, headers))


class FakeIdempotencyStore:
    """services.intake.ports.IdempotencyStorePort in memory (tests/contract/idempotency_store.py):
    the idempotency rows and the incident registry."""

    def __init__(self, owner: uuid.UUID | None = None) -> None:
        self.rows: dict = {}
        self.registry: dict = {}
        self.registry_events: dict = {}  # incident_id -> the event_id of its recorded report
        self.claims: dict = {}  # event_id -> Pending
        self.reporting: dict = {}  # incident_id -> Reported: the event whose report claimed it, not recorded yet
        self.claimed_records: dict = {}  # incident_id -> the record its claim wrote (taken over: the taker's record's)
        self.available = True
        self.owner = owner or uuid.uuid4()
        self.calendar: dict = {}  # item_id -> CalendarItem
        self.soon: dict = {}  # event_id -> Accepted: record_soon's, this process's

    def sharing(self, other: "FakeIdempotencyStore") -> "FakeIdempotencyStore":
        """This store (another process's own owner) on the same database as `other`."""
        self.rows, self.registry, self.registry_events = other.rows, other.registry, other.registry_events
        self.claims, self.reporting, self.claimed_records = other.claims, other.reporting, other.claimed_records
        self.calendar = other.calendar
        return self

    def _check(self) -> None:
        from services.intake.repository import StoreUnavailable

        if not self.available:
            raise StoreUnavailable("idempotency store: fake is down")

    async def lookup(self, event_id):
        self._check()
        return self.rows.get(event_id)

    async def lookup_many(self, event_ids):
        self._check()
        return {e: self.rows[e] for e in event_ids if e in self.rows}

    async def claim(self, event_id, subject, digest, report=None):
        from services.intake.repository import Pending, Reported

        self._check()
        if event_id in self.rows:
            return self.rows[event_id]
        if event_id in self.soon:
            return self.soon[event_id]
        claimed_now = event_id not in self.claims
        if claimed_now:
            self.claims[event_id] = Pending(event_id, subject, digest, self.owner, datetime.now(timezone.utc))
        if report is not None:
            incident = report.incident_id
            held = self.reporting.get(incident)
            if incident in self.registry:
                return Reported(incident, self.registry_events.get(incident), None, None, claimed_now)
            if held is None:
                self.reporting[incident] = Reported(incident, event_id, self.owner, datetime.now(timezone.utc))
                self.claimed_records[incident] = report  # the claim holds the record its event's row settles
            elif held.event_id != event_id:
                return held._replace(claimed=claimed_now)
        return None if claimed_now else self.claims[event_id]

    async def claim_many(self, claims):
        found = {c[0]: await self.claim(*c) for c in claims}
        return {e: f for e, f in found.items() if f is not None}

    async def take_over_report(self, reported, event_id) -> bool:
        self._check()
        held = self.reporting.get(reported.incident_id)
        if reported.owner is None or held is None or held._replace(claimed=reported.claimed) != reported:
            return False  # not the claim that was read (whether this call claimed its own event aside)
        self.reporting[reported.incident_id] = reported._replace(event_id=event_id, owner=self.owner,
                                                                 since=datetime.now(timezone.utc))
        return True

    async def take_over(self, pending) -> bool:
        self._check()
        if self.claims.get(pending.event_id) != pending or pending.owner is None:
            return False
        self.claims[pending.event_id] = pending._replace(owner=self.owner, since=datetime.now(timezone.utc))
        return True

    async def release(self, event_ids, incident_ids=()) -> None:
        self._check()
        if not all(isinstance(i, uuid.UUID) for i in [*event_ids, *incident_ids]):  # as PostgreSQL refuses them
            raise TypeError(f"release takes ids: {event_ids!r}, {incident_ids!r}")
        released = {e for e in event_ids if e in self.claims and self.claims[e].owner == self.owner}
        for e in released:
            del self.claims[e]
        for i in incident_ids:
            if i in self.reporting and self.reporting[i].event_id in released:
                del self.reporting[i]
                self.claimed_records.pop(i, None)

    async def claim_calendar_item(self, item_id, kind, agency, subject):
        from services.intake.repository import CalendarItem

        self._check()
        return self.calendar.setdefault(item_id, CalendarItem(kind, agency, subject))

    async def calendar_item(self, item_id):
        self._check()
        return self.calendar.get(item_id)

    async def record_calendar(self, accepted, cancelled=None) -> None:
        self._check()
        self._keep(accepted)
        if cancelled is not None and cancelled in self.calendar:
            self.calendar[cancelled] = self.calendar[cancelled]._replace(cancelled=True)

    async def incident(self, incident_id):
        self._check()
        return self.registry.get(incident_id)

    async def incidents(self, incident_ids):
        self._check()
        return {i: self.registry[i] for i in incident_ids if i in self.registry}

    def _keep(self, written) -> None:
        from services.intake import registry
        from services.intake.repository import as_written

        written = as_written(written)
        self.claims.pop(written.accepted.event_id, None)
        if written.accepted.event_id in self.rows:
            return
        self.rows[written.accepted.event_id] = written.accepted
        report = written.report
        if report is not None and report.incident_id not in self.registry:
            held = self.reporting.get(report.incident_id)
            if held is None or held.event_id == written.accepted.event_id:  # settles its own claim, or none
                self.reporting.pop(report.incident_id, None)
                claimed = self.claimed_records.pop(report.incident_id, None)
                # registered: the claim's record is the one kept (the real store writes no other)
                self.registry[report.incident_id] = claimed if written.registered and claimed is not None else report
                self.registry_events[report.incident_id] = written.accepted.event_id
        if written.change is not None and written.change.incident_id in self.registry:
            self.registry[written.change.incident_id] = registry.applied(
                self.registry[written.change.incident_id], written.change)

    async def record(self, accepted) -> None:
        self._check()
        self._keep(accepted)

    async def record_many(self, accepted) -> None:
        for one in accepted:
            await self.record(one)

    async def confirm(self, written) -> list:
        """Durable at once; what it does not hold (never written, or dropped by a test as a database
        restart before its flush would lose it) is lost."""
        self._check()
        return [w for w in written if w.accepted.event_id not in self.rows]

    def record_soon(self, accepted) -> None:
        """Written shortly after; claimed meanwhile, it is already its replay (as the real store answers)."""
        from services.intake.repository import as_written

        self.soon[as_written(accepted).accepted.event_id] = as_written(accepted).accepted
        asyncio.get_running_loop().call_soon(self._keep, accepted)

    async def ping(self) -> bool:
        return self.available


@dataclass
class FakePublisher:
    """services.intake.ports.PublisherPort (tests/contract/publisher.py): each event's records
    (an older schema version still produced follows its event) appended to the partition its
    key gives, as the producer partitions, and acknowledged at the event's own record; or it
    answers `failure` (then, with `late`, acknowledges afterwards through `on_late_ack`, as
    the real one does when the broker answers after the bound)."""

    topic: str = "incidents.events.v1"
    partitions: int = 6
    failure: BaseException | None = None
    late: bool = False
    on_late_ack: Any = None
    gate: asyncio.Event | None = None  # when set, every publish waits for it
    published: list = field(default_factory=list)
    log: dict = field(default_factory=dict)  # partition -> the records on it, in order
    written_at: dict = field(default_factory=dict)  # partition -> when each record was written
    connected: bool = True
    searches: list = field(default_factory=list)  # the event_ids of each find_many call

    def _ack(self, event: Any) -> Any:
        from aiokafka.structs import RecordMetadata

        from services.shared.codec import editions
        from services.shared.kafka import partition_for

        records = editions(event)
        partition = partition_for(records[0].key, list(range(self.partitions)))
        log = self.log.setdefault(partition, [])
        offset = len(log)
        log += records
        now = datetime.now(timezone.utc)
        self.written_at.setdefault(partition, []).extend([now] * len(records))
        self.published.append(event)
        return RecordMetadata(self.topic, partition, None, offset, -1, -1, -1)

    async def find(self, event: Any, since: datetime) -> Any:
        [found] = await self.find_many([(event, since)])
        return found

    async def find_many(self, wanted: list, timeout_s: float | None = None) -> list:
        from aiokafka.structs import RecordMetadata

        from services.intake.publisher import CLOCK_SKEW_S
        from services.shared.codec import NEWER_VERSION_HEADER, encode, header
        from services.shared.kafka import partition_for

        if not self.connected:
            raise self._unavailable()
        self.searches.append([event.event_id for event, _ in wanted])
        found = []
        for event, since in wanted:
            partition = partition_for(encode(event).key, list(range(self.partitions)))
            times = self.written_at.get(partition, [])
            found.append(next((RecordMetadata(self.topic, partition, None, offset, -1, -1, -1)
                               for offset, record in enumerate(self.log.get(partition, []))
                               if times[offset].timestamp() >= since.timestamp() - CLOCK_SKEW_S
                               and header(record.headers, NEWER_VERSION_HEADER) is None
                               and json.loads(record.value)["event_id"] == str(event.event_id)), None))
        return found

    def _unavailable(self) -> BaseException:
        from services.intake.publisher import BrokerUnavailable

        return BrokerUnavailable("not connected to the broker")

    async def publish(self, events: list) -> list:
        if not self.connected:
            return [self._unavailable()] * len(events)
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            if self.late:
                for event in events:
                    asyncio.get_running_loop().call_soon(self.on_late_ack, event, self._ack(event))
            return [self.failure] * len(events)
        return [self._ack(e) for e in events]

    async def publish_batch(self, events: list) -> list:
        if not self.connected:
            raise self._unavailable()
        return await self.publish(events)


class FakeStatusStore:
    """services.projector.ports.StatusStorePort in memory (tests/contract/status_store.py).
    `unavailable`: how many more writes fail as if the database were away; `refuse`: event ids
    whose batch the store refuses (as a constraint would), writing nothing of it."""

    def __init__(self) -> None:
        self.offsets: dict = {}
        self.applied_ids: set = set()
        self.facts: list = []
        self.unavailable = 0
        self.refuse: set = set()
        self.writes = 0
        self.resets = 0

    async def write_batch(self, batch, group: str):
        import asyncpg

        from services.projector.repository import Written

        self.writes += 1
        if self.unavailable:
            self.unavailable -= 1
            raise ConnectionRefusedError("fake database is away")
        if any(f.event_id in self.refuse for f in batch.facts):
            raise asyncpg.exceptions.CheckViolationError("fake store refuses it")
        new = [f for f in batch.facts if f.event_id not in self.applied_ids]
        self.applied_ids |= {f.event_id for f in new}
        self.facts += new
        for (topic, partition), offset in batch.offsets.items():
            key = (group, topic, partition)
            self.offsets[key] = max(self.offsets.get(key, 0), offset)
        written = Written()
        written.facts = list(new)
        written.applied.update(f.event_type for f in new)
        return written

    async def stored_offsets(self, group: str, topics) -> dict:
        wanted = set(topics)
        return {(t, p): o for (g, t, p), o in self.offsets.items() if g == group and t in wanted}

    async def reset(self) -> None:
        self.resets += 1


class FakeStateStore:
    """services.escalation.store.StateStore in memory (tests/contract/state_store.py): the
    live states and the changelog as (key, value, partition) records in the order they were
    acknowledged. `failure`: the changelog refuses every write (the states are kept in memory
    first, as the table keeps them)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: list[tuple[bytes, bytes | None, int]] = []
        self.failure: BaseException | None = None

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def items(self):
        return self.data.items()

    def __len__(self) -> int:
        return len(self.data)

    async def write(self, states, partition: int) -> None:
        states = list(states)
        self.data.update(states)
        await asyncio.sleep(0)  # the acknowledgements come later
        if self.failure is not None:
            raise self.failure
        self.changelog += [(key, value, partition) for key, value in states]

    async def remove(self, key: bytes, partition: int) -> None:
        self.data.pop(key, None)
        await asyncio.sleep(0)
        if self.failure is not None:
            raise self.failure
        self.changelog.append((key, None, partition))

    def recovered(self) -> dict[bytes, tuple[bytes, int]]:
        """What a restarted worker rebuilds from the changelog: key -> (state, partition)."""
        out: dict[bytes, tuple[bytes, int]] = {}
        for key, value, partition in self.changelog:
            if value is None:
                out.pop(key, None)
            else:
                out[key] = (value, partition)
        return out
