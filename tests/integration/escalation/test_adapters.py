"""The escalation worker's own adapters on the real broker pass the contracts their fakes pass:
the state store (the faust table on its changelog, services/escalation/store.py) and the
sender (the processor runtime's FaustSink), both as `build` wires them for `muster run
escalation`, with only the app's producer started."""

from __future__ import annotations

import pytest

from services.escalation.app import build
from services.shared.events import DeadLetter
from services.shared.kafka import apply_topics, make_admin
from services.shared.topics import TopicCatalog
from tests.contract.sink import SinkContract
from tests.contract.state_store import StateStoreContract
from tests.support import read_records

pytestmark = pytest.mark.kafka
TOPICS = ["escalation.incident_state", "escalation.control", "escalations.fire", "deadletter", "incidents"]


@pytest.fixture(scope="module")
async def escalation(test_settings):
    """A built escalation worker under a prefix of this module's own (its topics alone read
    back); its producer started, nothing else."""
    settings = test_settings.model_copy(update={"topic_prefix": f"{test_settings.topic_prefix}adapters."})
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog, TOPICS)
    worker = build(settings)
    await worker.app.producer.start()
    try:
        yield worker
    finally:
        await worker.app.producer.stop()
        try:
            await admin.delete_topics([catalog.name(t) for t in TOPICS])
        finally:
            await admin.close()


class _OnTheBroker:
    @pytest.fixture(autouse=True)
    def _worker(self, escalation):
        self.worker = escalation

    def topic(self, topic_id: str) -> str:
        return self.worker.catalog.name(topic_id)

    async def read(self, topic_id: str) -> list:
        return await read_records(self.worker.settings, self.topic(topic_id),
                                  self.worker.catalog.spec_of(topic_id).partitions)


class TestChangelogTable(_OnTheBroker, StateStoreContract):
    async def make_store(self):
        return self.worker.store

    async def recovered(self, store) -> dict[bytes, tuple[bytes, int]]:
        out: dict[bytes, tuple[bytes, int]] = {}
        for record in await self.read("escalation.incident_state"):
            if record.value is None:
                out.pop(record.key, None)
            else:
                out[record.key] = (record.value, record.partition)
        return out


class TestFaustSink(_OnTheBroker, SinkContract):
    async def make_sink(self):
        return self.worker.sink

    async def arrived(self, sink, topic: str) -> list:
        return await self.read(self.worker.catalog.id_of(topic))

    async def dead_lettered(self, sink) -> list[tuple[str, int, int, str]]:
        letters = [DeadLetter.model_validate_json(r.value) for r in await self.read("deadletter")]
        return [(d.source_topic, d.source_partition, d.source_offset, d.error_class) for d in letters]
