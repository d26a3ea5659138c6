"""The fake sink passes the sink's contract (the real one: tests/integration/escalation/test_adapters.py)."""

from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from tests.contract.sink import SinkContract
from tests.fakes import RecordingSink

CATALOG = TopicCatalog.from_settings(Settings())


class TestRecordingSink(SinkContract):
    async def make_sink(self) -> RecordingSink:
        return RecordingSink()

    def topic(self, topic_id: str) -> str:
        return CATALOG.name(topic_id)

    async def arrived(self, sink: RecordingSink, topic: str) -> list:
        return [r for r in sink.sent if r.topic == topic]

    async def dead_lettered(self, sink: RecordingSink) -> list[tuple[str, int, int, str]]:
        return [(r.topic, r.partition, r.offset, type(e).__name__) for r, e, _ in sink.dead]
