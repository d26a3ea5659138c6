"""The fake idempotency store passes the store's contract (the real one: tests/integration/intake/test_idempotency_store.py)."""

from tests.contract.idempotency_store import IdempotencyStoreContract, RegistryContract
from tests.fakes import FakeIdempotencyStore


class TestFakeIdempotencyStore(IdempotencyStoreContract, RegistryContract):
    async def make_store(self) -> FakeIdempotencyStore:
        return FakeIdempotencyStore()
