"""The offline replay (`muster tension replay`, the chaos auditor's reference): the log's records
routed as the re-keying stage routes them, then the pure rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition

from services.shared.codec import encode
from services.shared.events import Category
from services.shared.wards import wards
from services.tension.config import load_config
from services.tension.facts import CALENDAR_TYPES
from services.tension.offline import replay_records
from services.tension.rules import replay, to_event
from tests.tension_history import BOW_EAST, BY_WARD_PARTITIONS, bonfire_night, by_ward_partition

CONFIG = load_config()
NAMES = {code: w.name for code, w in wards().items()}
INCIDENTS, CALENDAR = "incidents", "calendar"


@dataclass(frozen=True)
class Record:  # what aiokafka hands over
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list


def log_of(events) -> dict:
    """The records each partition holds, as a producer with the default partitioner writes them."""
    partitioner, log = DefaultPartitioner(), {TopicPartition(INCIDENTS, p): [] for p in range(6)}
    log[TopicPartition(CALENDAR, 0)] = []
    for event in events:
        encoded = encode(event)
        tp = TopicPartition(CALENDAR, 0) if event.event_type in CALENDAR_TYPES else \
            TopicPartition(INCIDENTS, partitioner(encoded.key, list(range(6)), list(range(6))))
        log[tp].append(Record(tp.topic, tp.partition, len(log[tp]), encoded.key, encoded.value, encoded.headers))
    return log


def offline(events):
    return replay_records(log_of(events), incidents_topic=INCIDENTS, calendar_topic=CALENDAR, config=CONFIG,
                          partitions=BY_WARD_PARTITIONS, ward_names=NAMES)


def test_the_offline_replay_of_a_log_is_what_the_rules_publish_for_its_facts():
    history, event = bonfire_night(0)
    for events in (sorted(history, key=lambda e: e.occurred_at), sorted(history + [event], key=lambda e: e.occurred_at)):
        expected = [to_event(c, NAMES[c.ward]) for c in replay(by_ward_partition(events, config=CONFIG), CONFIG,
                                                               BY_WARD_PARTITIONS)]
        assert sorted(offline(events), key=str) == sorted(expected, key=str)
    assert offline(sorted(history, key=lambda e: e.occurred_at))  # the Bonfire Night without its event alerts


def test_a_repeated_report_counts_nowhere_as_in_the_re_keying_stage():
    history, _ = bonfire_night(0)
    history = sorted(history, key=lambda e: e.occurred_at)
    noise = [e for e in history if e.location.ward_code == BOW_EAST][-24:]
    # the same incidents reported again, hours later as hate incidents: they would count twice
    repeats = [e.model_copy(update={"event_id": uuid.uuid4(), "category": Category.HATE_INCIDENT,
                                    "occurred_at": e.occurred_at + timedelta(hours=3)}) for e in noise]
    assert offline(history + repeats) == offline(history)
