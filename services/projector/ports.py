"""The interface the Projector writes through. The real adapter is repository.StatusStore
(PostgreSQL); tests/fakes.py has a fake, and one contract suite runs against both
(tests/contract/status_store.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from services.projector.handlers import Batch
from services.projector.repository import Written


class StatusStorePort(Protocol):
    async def write_batch(self, batch: Batch, group: str) -> Written:
        """The whole batch in one transaction with its offsets; a fact already applied (by
        event_id) is not applied again. Raises a transient error while the database is away,
        asyncpg.PostgresError when it refuses the batch (nothing of it is written)."""

    async def stored_offsets(self, group: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the next offset to read, as the last batches wrote it."""

    async def reset(self) -> None:
        """Forget the connection; the next call opens another."""
