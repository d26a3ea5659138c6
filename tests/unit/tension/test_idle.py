"""Which source partitions the re-keying stage calls idle: read to their end, and not
written to, for `processing.idle_after`."""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from services.shared.stage import Batch
from services.tension.config import load_config
from services.tension.rekey import Rekey

CONFIG = load_config()
INCIDENTS, CALENDAR = TopicPartition("incidents", 2), TopicPartition("calendar", 0)


def stage() -> Rekey:
    return Rekey("by-ward", 3, 6, incidents_topic="incidents", calendar_topic="calendar", declared_calendar=1,
                 config=CONFIG)


def test_a_partition_read_to_its_end_is_idle_only_after_a_quiet_spell():
    rekey, wait = stage(), CONFIG.processing.idle_after
    ends = {INCIDENTS: True, CALENDAR: True}
    assert rekey.idle(Batch({}, 6, ends), 6, now=100.0) == {2: False, 6: False}  # the calendar is source 6
    assert rekey.idle(Batch({}, 6, ends), 6, now=100.0 + wait) == {2: True, 6: True}


def test_a_record_just_read_or_records_still_to_read_make_it_busy_again():
    rekey, wait = stage(), CONFIG.processing.idle_after
    rekey.idle(Batch({}, 6, {INCIDENTS: True}), 6, now=100.0)
    assert rekey.idle(Batch({INCIDENTS: ["a record"]}, 6, {INCIDENTS: True}), 6, now=100.0 + wait) == {2: False}
    assert rekey.idle(Batch({}, 6, {INCIDENTS: True}), 6, now=100.0 + 1.5 * wait) == {2: False}
    assert rekey.idle(Batch({}, 6, {INCIDENTS: True}), 6, now=100.0 + 2 * wait) == {2: True}
    assert rekey.idle(Batch({}, 6, {INCIDENTS: False}), 6, now=200.0) == {2: False}
