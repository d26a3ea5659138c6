"""The fake status store passes the store's contract (the real one: tests/integration/projector/test_status_store.py)."""

from tests.contract.status_store import StatusStoreContract
from tests.fakes import FakeStatusStore


class TestFakeStatusStore(StatusStoreContract):
    async def make_store(self) -> FakeStatusStore:
        return FakeStatusStore()
