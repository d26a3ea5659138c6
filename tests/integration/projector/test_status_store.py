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
