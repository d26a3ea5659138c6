"""The interfaces IntakeService depends on. The real adapters are publisher.Publisher (Kafka)
and repository.IdempotencyStore (PostgreSQL); tests/fakes.py has a fake of each, and one
contract suite per interface runs against both (tests/contract/idempotency_store.py,
tests/contract/publisher.py)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from aiokafka.structs import RecordMetadata

from services.intake.registry import IncidentRecord
from services.intake.repository import Accepted, CalendarItem, Pending, Reported, Written
from services.shared.events import IncidentEvent


class IdempotencyStorePort(Protocol):
    """Which event_ids intake has published, and where they landed."""

    owner: uuid.UUID  # this process, in the claims it makes

    async def lookup(self, event_id: uuid.UUID) -> Accepted | None: ...

    async def claim(self, event_id: uuid.UUID, subject: str | None, digest: bytes | None,
                    report: IncidentRecord | None = None) -> Accepted | Pending | Reported | None:
        """Before publishing: the event's row if recorded; else, for a report (`report`: its registry
        record), Reported if another event holds that incident (claimed or recorded); else an earlier
        attempt's claim; else None, and the event_id (and the report's incident, holding `report`) is
        now claimed by this process. The event's record (`Written.registered`) makes that the registry's
        record of the incident."""

    async def claim_many(self, claims: list[tuple[uuid.UUID, str | None, bytes | None, IncidentRecord | None]]
                         ) -> dict[uuid.UUID, Accepted | Pending | Reported]:
        """`claim` for many: the ids that were recorded or claimed before, or whose report's incident
        is another's (the rest are claimed now; of two reports of one incident, the first in the list)."""

    async def take_over(self, pending: Pending) -> bool:
        """Make an earlier attempt's claim this process's; False if it changed meanwhile."""

    async def take_over_report(self, reported: Reported, event_id: uuid.UUID) -> bool:
        """Make the incident another event claimed this event's, claimed by this process; False if
        that claim changed meanwhile (or is a record)."""

    async def release(self, event_ids: list[uuid.UUID], incident_ids: Collection[uuid.UUID] = ()) -> None:
        """Give up this process's claims of events it did not publish, and of the incidents (of the
        reports among them) those events claimed."""

    async def lookup_many(self, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, Accepted]: ...

    async def record(self, accepted: Accepted | Written) -> None:
        """Remember it (and, for a Written, its registry change, in the same transaction), settling its
        claim; the first record of an event_id is the one kept. Visible to every reader when it returns;
        durable once `confirm` says so."""

    async def confirm(self, written: list[Written]) -> list[Written]:
        """Once those of these records the store holds are durable: the ones it does not hold (lost by a
        restart before they were flushed, or never written), to write again."""

    async def record_many(self, accepted: list[Accepted | Written]) -> None: ...

    def record_soon(self, accepted: Accepted | Written) -> None:
        """Remember it shortly, off the caller's path."""

    async def claim_calendar_item(self, item_id: uuid.UUID, kind: str, agency: str, subject: str) -> CalendarItem:
        """The planned event or silence `item_id` as registered (whose it is, whether cancelled), made
        this caller's agency's if it is new; of two callers racing to make one, one owns it."""

    async def calendar_item(self, item_id: uuid.UUID) -> CalendarItem | None:
        """The planned event or silence as registered (None: intake never registered it)."""

    async def record_calendar(self, accepted: Accepted, cancelled: uuid.UUID | None = None) -> None:
        """A calendar fact's idempotency row (its claim settled) and, for a cancellation, its item
        marked cancelled, together."""

    async def incident(self, incident_id: uuid.UUID) -> IncidentRecord | None:
        """The incident registry's record (None: intake never accepted its report)."""

    async def incidents(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, IncidentRecord]: ...

    async def ping(self) -> bool: ...


class KeyServicePort(Protocol):
    """The key service as intake uses it (services/shared/keys.py): each incident's data key, made if
    new; raises keys.PeopleErased for an incident whose people were erased."""

    async def keys_for_sealing(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]: ...


class PublisherPort(Protocol):
    """Puts events on the incidents topic; an outcome is the broker's acknowledgement or why not."""

    @property
    def connected(self) -> bool: ...

    async def publish(self, events: list[IncidentEvent]) -> list[RecordMetadata | BaseException]: ...

    async def publish_batch(self, events: list[IncidentEvent]) -> list[RecordMetadata | BaseException]: ...

    async def find(self, event: IncidentEvent, since: datetime) -> RecordMetadata | None:
        """Where the event's own record landed if one written since `since` is on the topic (None: none
        is); publisher.BrokerUnavailable when the broker cannot say."""

    async def find_many(self, wanted: list[tuple[IncidentEvent, datetime]],
                        timeout_s: float | None = None) -> list[RecordMetadata | None]:
        """`find` for each (event, since), in one read of the topic, within `timeout_s`."""
