"""The fake idempotency store passes the store's contract (the real one: tests/integration/intake/test_idempotency_store.py)."""

from tests.contract.idempotency_store import CalendarContract, IdempotencyStoreContract, IncidentClaimContract, RegistryContract
from tests.fakes import FakeIdempotencyStore


class TestFakeIdempotencyStore(IdempotencyStoreContract, RegistryContract, IncidentClaimContract, CalendarContract):
    async def make_store(self) -> FakeIdempotencyStore:
        """A store of its own owner (an intake process); the stores of one test share a database."""
        store = FakeIdempotencyStore()
        if getattr(self, "database", None) is None:
            self.database = store
            return store
        return store.sharing(self.database)
