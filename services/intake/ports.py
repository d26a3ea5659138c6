"""The interfaces IntakeService depends on. The real adapters are publisher.Publisher (Kafka)
and repository.IdempotencyStore (PostgreSQL); tests/fakes.py has a fake of each, and one
contract suite per interface runs against both (tests/contract/idempotency_store.py,
tests/contract/publisher.py)."""

from __future__ import annotations

import uuid
from typing import Protocol

from aiokafka.structs import RecordMetadata

from services.intake.registry import IncidentRecord
from services.intake.repository import Accepted, Written
from services.shared.events import IncidentEvent


class IdempotencyStorePort(Protocol):
    """Which event_ids intake has published, and where they landed."""

    async def lookup(self, event_id: uuid.UUID) -> Accepted | None: ...

    async def lookup_many(self, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, Accepted]: ...

    async def record(self, accepted: Accepted | Written) -> None:
        """Remember it (and, for a Written, its registry change, in the same transaction); the first
        record of an event_id is the one kept."""

    async def record_many(self, accepted: list[Accepted | Written]) -> None: ...

    def record_soon(self, accepted: Accepted | Written) -> None:
        """Remember it shortly, off the caller's path."""

    async def incident(self, incident_id: uuid.UUID) -> IncidentRecord | None:
        """The incident registry's record (None: intake never accepted its report)."""

    async def incidents(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, IncidentRecord]: ...

    async def ping(self) -> bool: ...


class PublisherPort(Protocol):
    """Puts events on the incidents topic; an outcome is the broker's acknowledgement or why not."""

    @property
    def connected(self) -> bool: ...

    async def publish(self, events: list[IncidentEvent]) -> list[RecordMetadata | BaseException]: ...

    async def publish_batch(self, events: list[IncidentEvent]) -> list[RecordMetadata | BaseException]: ...
