"""The fake publisher passes the publisher's contract (the real one: tests/integration/intake/test_publisher.py)."""

from tests.contract.publisher import PublisherContract, as_found
from tests.fakes import FakePublisher


class TestFakePublisher(PublisherContract):
    async def make_publisher(self) -> FakePublisher:
        return FakePublisher()

    async def make_unconnected(self) -> FakePublisher:
        return FakePublisher(connected=False)

    async def on_topic(self, publisher: FakePublisher) -> dict:
        return as_found((p, o, r.value, r.headers) for p, log in publisher.log.items() for o, r in enumerate(log))
