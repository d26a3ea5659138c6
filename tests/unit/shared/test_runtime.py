"""The stream-processor runtime's pieces without a broker: the dead-letter sink, and the
batch-stage contract (a stage sees a batch and a narrow sink, never its service)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from services.escalation.packer import Packer
from services.escalation.packing import unpack
from services.shared import codec
from services.shared.deadletter import DeadLetterSink, dead_letters_counter
from services.shared.events import DeadLetter
from services.shared.stage import Batch
from services.tension.config import load_config
from services.tension.rekey import Rekey
from services.tension.rules import ward_partition
from services.tension.state import Indicator
from tests.factories import WHITECHAPEL, reported
from tests.fakes import RecordingSender, RecordingSink

pytestmark = pytest.mark.unit


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list = ()


async def test_a_dead_letter_names_where_the_record_came_from_and_counts_by_input_and_error_class():
    registry = CollectorRegistry()
    counter = dead_letters_counter("demo", registry)
    sender = RecordingSender()
    sink = DeadLetterSink(sender, "dlq", service="demo", counter=counter)
    letter = await sink.send(Rec("in.v1", 2, 41, b"k", b"junk", [("event_type", b"X")]), codec.PoisonRecord("bad"),
                             "incidents")
    (sent,) = sender.sent
    decoded = DeadLetter.model_validate_json(sent.value)
    assert sent.topic == "dlq" and decoded == letter
    assert (decoded.source_topic, decoded.source_partition, decoded.source_offset) == ("in.v1", 2, 41)
    assert decoded.error_class == "PoisonRecord" and decoded.headers == {"event_type": "X"}
    value = registry.get_sample_value("muster_demo_dead_letters_total",
                                      {"input": "incidents", "error_class": "PoisonRecord"})
    assert value == 1.0


async def test_the_pack_stage_packs_each_source_partition_onto_the_same_partition_and_dead_letters_non_text():
    tp0, tp3 = TopicPartition("incidents", 0), TopicPartition("incidents", 3)
    batch = Batch({tp0: [Rec("incidents", 0, 5, b"a", b'{"x":1}')],
                   tp3: [Rec("incidents", 3, 9, b"b", b'{"y":2}'), Rec("incidents", 3, 10, b"c", b"\xff")]}, 6)
    sink = RecordingSink()
    await Packer("packed").handle(batch, sink)
    assert [(s.topic, s.partition, unpack(s.value)) for s in sink.sent] == [
        ("packed", 0, [(5, "a", '{"x":1}')]), ("packed", 3, [(9, "b", '{"y":2}')])]
    ((record, error, where),) = sink.dead
    assert record.offset == 10 and isinstance(error, codec.PoisonRecord) and where == "incidents"


async def test_the_rekey_stage_routes_a_report_to_the_partition_owning_its_ward():
    enc = codec.encode(reported(category="hate_incident",
                                location={"ward_code": WHITECHAPEL, "lat": 51.515, "lon": -0.065}))
    tp = TopicPartition("incidents", 1)
    sink = RecordingSink()
    await Rekey("by-ward", 3, 6, incidents_topic="incidents", calendar_topic="calendar", declared_calendar=1,
                config=load_config()).handle(Batch({tp: [Rec("incidents", 1, 0, enc.key, enc.value, enc.headers)]}, 0), sink)
    (sent,) = [s for s in sink.sent if s.partition == ward_partition(WHITECHAPEL, 3)]
    row, marker = orjson.loads(sent.value)  # then which source partitions are read to their end
    ind = Indicator.unpack(row)
    assert sent.topic == "by-ward" and len(sink.sent) == 3 and Indicator.unpack(marker).kind == "idle"
    assert (ind.ward, ind.category, ind.source, ind.sources) == (WHITECHAPEL, "hate_incident", 1, 7)  # 6 + calendar


def test_a_processor_s_group_session_outlasts_a_cut_of_its_broker_link_in_the_chaos_schedule(tmp_path):
    """Regression (issue 17, the soak of 2026-12-03 at de9acae): a 10 s session expired in the
    schedule's 10 s cut of the escalation worker's broker link; the rejoin recovered every table from
    its changelogs and the lag took 63 s to drain (limit 60 s). With the session outlasting the cut
    (and a few heartbeats lost on either side), the worker keeps its partitions and tables."""
    from services.chaos.faults import full_schedule
    from services.escalation.app import build
    from services.shared.settings import Settings
    from tests.unit.escalation.helpers import DEFAULT_RULES

    app = build(Settings(home=tmp_path), DEFAULT_RULES).app  # connects to nothing
    longest_cut = max(f.hold for f in full_schedule() if f.kind == "cut")
    heartbeat = app.conf.broker_heartbeat_interval
    assert app.conf.broker_session_timeout >= longest_cut + 3 * heartbeat + 10  # reconnecting takes seconds too
    assert app.conf.broker_session_timeout >= 3 * heartbeat
