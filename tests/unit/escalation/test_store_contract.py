"""The fake state store passes the store's contract (the real one: tests/integration/escalation/test_adapters.py)."""

from tests.contract.state_store import StateStoreContract
from tests.fakes import FakeStateStore


class TestFakeStateStore(StateStoreContract):
    async def make_store(self) -> FakeStateStore:
        return FakeStateStore()

    async def recovered(self, store: FakeStateStore) -> dict[bytes, tuple[bytes, int]]:
        return store.recovered()
