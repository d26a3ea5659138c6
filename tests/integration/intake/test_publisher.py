"""The real publisher (services/intake/publisher.py) on the broker passes the publisher's
contract, as the fake does: on an incidents topic of this module's own (read back whole)."""

from __future__ import annotations

import pytest

from services.intake.publisher import Publisher
from services.shared.kafka import apply_topics, make_admin
from services.shared.topics import TopicCatalog
from tests.contract.publisher import PublisherContract, as_found
from tests.support import read_records

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def own_incidents(test_settings):
    settings = test_settings.model_copy(update={"topic_prefix": f"{test_settings.topic_prefix}publisher.",
                                                "intake_publish_timeout_s": 10.0})
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog, ["incidents"])
    try:
        yield settings, catalog  # the session's credentials: ACLs are tests/integration/security's
    finally:
        try:
            await admin.delete_topics([catalog.name("incidents")])
        finally:
            await admin.close()


class TestKafkaPublisher(PublisherContract):
    @pytest.fixture(autouse=True)
    async def _broker(self, own_incidents):
        self.settings, self.catalog = own_incidents
        self.publishers: list[Publisher] = []
        yield
        for publisher in self.publishers:
            await publisher.stop()

    async def make_publisher(self) -> Publisher:
        publisher = Publisher(self.settings, self.catalog.name("incidents"))
        self.publishers.append(publisher)
        await publisher.start()
        return publisher

    async def make_unconnected(self) -> Publisher:
        return Publisher(self.settings, self.catalog.name("incidents"))  # never started

    async def on_topic(self, publisher: Publisher) -> dict:
        records = await read_records(self.settings, publisher.topic, self.catalog.spec_of("incidents").partitions)
        return as_found((r.partition, r.offset, r.value, r.headers) for r in records)
