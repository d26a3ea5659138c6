"""The real idempotency store (PostgreSQL) passes the store's contract, as the fake does."""

import pytest

from services.intake.repository import IdempotencyStore
from tests.contract.idempotency_store import IdempotencyStoreContract, IncidentClaimContract, RegistryContract

pytestmark = pytest.mark.postgres


class TestPostgresIdempotencyStore(IdempotencyStoreContract, RegistryContract, IncidentClaimContract):
    @pytest.fixture(autouse=True)
    async def _database(self, test_settings, database):
        self.dsn = test_settings.database_url.get_secret_value()
        self.stores: list[IdempotencyStore] = []
        yield
        for store in self.stores:
            await store.stop()

    async def make_store(self) -> IdempotencyStore:
        store = IdempotencyStore(self.dsn, timeout_s=5.0)
        await store.start()
        self.stores.append(store)
        return store
