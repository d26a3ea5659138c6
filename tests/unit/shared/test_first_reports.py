"""services/shared/first_reports.py: the first reports a stateless stage on the incidents topic
remembers, per source partition, read again from the topic when it has not seen what came before."""

from __future__ import annotations

import asyncio
import uuid
from typing import NamedTuple

import pytest

from services.shared import events as ev
from services.shared.admission import MODE_MISMATCH, REPEATED_REPORT
from services.shared.codec import PoisonRecord, encode
from services.shared.first_reports import FirstReports, reported_by_headers
from tests import factories as f


class Record(NamedTuple):
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list
    topic: str = "incidents"


def record(event, partition: int = 0, offset: int = 0, headers: bool = True) -> Record:
    e = encode(event)
    return Record(partition, offset, e.key, e.value, e.headers if headers else [])


def tracker(found: dict[int, dict[str, str]] | None = None):
    calls = []

    async def scan(until):
        calls.append(dict(until))
        return {p: dict((found or {}).get(p, {})) for p in until}

    return FirstReports(scan), calls


def test_a_second_report_and_a_fact_of_another_mode_are_refused_in_log_order():
    reports, _ = tracker()
    first = f.reported()
    asyncio.run(reports.ensure({0: 0}))
    assert reports.refusal(0, 0, "IncidentReported", ev.Mode.LIVE, first.incident_id) is None
    again = reports.refusal(0, 1, "IncidentReported", ev.Mode.LIVE, first.incident_id)
    assert again.reason == REPEATED_REPORT and str(first.incident_id) in again.detail
    drill = reports.refusal(0, 2, "IncidentUpdated", ev.Mode.EXERCISE, first.incident_id)
    assert drill.reason == MODE_MISMATCH
    assert reports.refusal(0, 3, "IncidentUpdated", "live", first.incident_id) is None
    assert reports.refusal(0, 4, "IncidentUpdated", "exercise", uuid.uuid4()) is None  # no report yet: taken
    assert reports.refusal(0, 5, None, None, None) is None  # a record the stage does not read
    assert reports.next == {0: 6}


def test_the_partition_is_read_again_only_when_the_batch_does_not_follow_what_was_seen():
    earlier = str(uuid.uuid4())
    reports, calls = tracker({2: {earlier: "exercise"}})
    asyncio.run(reports.ensure({2: 40, 3: 0}))  # first sight (a restart): partition 2 read up to 40; 3 is new
    assert calls == [{2: 40, 3: 0}]
    assert reports.refusal(2, 40, "IncidentReported", "exercise", earlier).reason == REPEATED_REPORT
    assert reports.refusal(2, 41, "NoteAdded", "live", earlier).reason == MODE_MISMATCH
    asyncio.run(reports.ensure({2: 42}))  # the next batch follows: nothing read again
    assert len(calls) == 1
    asyncio.run(reports.ensure({2: 90}))  # a gap (the partition was elsewhere meanwhile): read again
    assert calls[-1] == {2: 90} and reports.scans == 3
    asyncio.run(reports.ensure({5: 0}))  # a partition from its start: nothing before it to read
    assert len(calls) == 2


def test_a_report_is_known_by_its_headers_or_else_by_its_value():
    report = f.reported(mode=ev.Mode.TEST)
    assert reported_by_headers(record(report)) == (str(report.incident_id), "test")
    assert reported_by_headers(record(report, headers=False)) == (str(report.incident_id), "test")
    note = f.fact(ev.NoteAdded, report.incident_id, text="x")
    assert reported_by_headers(record(note)) is None
    assert reported_by_headers(record(note, headers=False)) is None
    with pytest.raises(PoisonRecord):
        reported_by_headers(Record(0, 0, b"k", b"{not json", []))


def test_an_incident_is_kept_by_its_sixteen_bytes_and_known_however_its_id_is_spelt():
    import uuid

    reports, _ = tracker()
    incident = uuid.uuid4()
    assert reports.refusal(0, 0, "IncidentReported", "live", incident) is None
    [key] = reports.modes[0]
    assert key == incident.bytes  # 49 bytes of object, not the 85 of its 36-character string
    assert reports.refusal(0, 1, "IncidentReported", "live", str(incident)) is not None  # the same incident
