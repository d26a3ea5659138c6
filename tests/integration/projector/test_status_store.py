"""The real status store (PostgreSQL, migrated) passes the store's contract, as the fake does."""

import pytest

from services.projector.repository import StatusStore
from tests.contract.status_store import StatusStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStatusStore(StatusStoreContract):
    @pytest.fixture(autouse=True)
    async def _database(self, world):
        self.dsn = world.dsn
        self.stores: list[StatusStore] = []
        yield
        for store in self.stores:
            await store.reset()

    async def make_store(self) -> StatusStore:
        store = StatusStore(self.dsn)
        self.stores.append(store)
        return store


async def test_the_writer_waits_for_the_wal_flush_before_a_batch_counts_as_written(world):
    """A commit the database can lose in a crash lost its facts for good: the stored offsets are
    read again only on a rebalance, not after a database restart (the soak of 2026-12-03)."""
    store = StatusStore(world.dsn)
    try:
        conn = await store._db()
        assert await conn.fetchval("show synchronous_commit") == "on"
    finally:
        await store.reset()
