"""The tension re-keying stage takes an incident's first report only, and no fact of another
mode than its incident's (services/shared/admission.py): a second report moved to another ward
would count twice, an exercise copy would count in the exercise's scoring. What it ignores is
dead-lettered with the reason and counted; nothing of it reaches the by-ward topic."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
from aiokafka.structs import TopicPartition

from services.shared import events as ev
from services.shared.first_reports import FirstReports
from services.shared.stage import Batch
from services.tension import metrics
from services.tension.config import load_config
from services.tension.rekey import Rekey
from tests import factories as f
from tests.unit.casework.test_rekey_admission import Sink, no_scan
from tests.unit.shared.test_first_reports import record


def test_a_repeated_report_and_a_fact_of_another_mode_reach_no_ward():
    first = f.reported(category="hate_incident", location=ev.Location(ward_code=f.BOW_EAST))
    again = f.reported(incident_id=first.incident_id, category="violence", occurred_at=first.occurred_at + timedelta(hours=3),
                       location=ev.Location(ward_code=f.WHITECHAPEL))
    drill = f.fact(ev.IncidentUpdated, first.incident_id, category="violence", mode=ev.Mode.EXERCISE)
    later = f.fact(ev.IncidentUpdated, first.incident_id, category="violence")
    records = [record(e, partition=1, offset=10 + n) for n, e in enumerate([first, again, drill, later])]
    ignored = lambda: (metrics.IGNORED.labels("repeated_report")._value.get(),  # noqa: E731
                       metrics.IGNORED.labels("mode_mismatch")._value.get())
    before = ignored()
    scans = []

    async def scan(until):
        scans.append(dict(until))
        return await no_scan(until)

    rekey = Rekey("by-ward", 3, 6, incidents_topic="incidents", calendar_topic="calendar", declared_calendar=1,
                  config=load_config(), reports=FirstReports(scan))
    sink = Sink()
    asyncio.run(rekey.handle(Batch({TopicPartition("incidents", 1): records}, 6, {}), sink))
    assert scans == [{1: 10}]  # what came before offset 10 was read again first
    rows = [row for value in sink.sent for row in orjson.loads(value) if row[0] == str(first.incident_id)]
    reports = [row for row in rows if len(row) <= 7 or row[7] == "report"]
    assert [(row[1], row[2]) for row in reports] == [(f.BOW_EAST, "hate_incident")]  # counted once, where first reported
    assert all(len(row) < 9 or row[8] == "live" for row in rows)  # nothing of the incident in the exercise's scoring
    assert [(o, error.split(":")[0]) for o, error, _ in sink.dead] == [(11, "repeated_report"), (12, "mode_mismatch")]
    after = ignored()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
