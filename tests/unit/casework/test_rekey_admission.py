"""The casework re-keying stage takes an incident's first report only, and no fact of another
mode than its incident's (services/shared/admission.py): what it ignores is dead-lettered with
the reason and counted, and makes no case input."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka.structs import TopicPartition

from services.casework import metrics
from services.casework.config import load_config
from services.casework.rekey import Rekey
from services.shared import events as ev
from services.shared.first_reports import FirstReports
from services.shared.stage import Batch
from tests import factories as f
from tests.unit.shared.test_first_reports import record

UPRN = "100023336956"


class Sink:
    def __init__(self) -> None:
        self.sent, self.dead = [], []

    async def send(self, topic, key, value, partition):
        self.sent.append(value)
        return asyncio.sleep(0)

    async def dead_letter(self, record, error, input_name):
        self.dead.append((record.offset, str(error), input_name))


async def no_scan(until):
    return {}


def test_a_repeated_report_and_a_fact_of_another_mode_make_no_case_input():
    first = f.reported(category="noise", uprn=UPRN)
    again = f.reported(incident_id=first.incident_id, category="drugs", uprn="100023336957")
    drill = f.reported(category="noise", uprn=UPRN, mode=ev.Mode.EXERCISE, exercise="drill-7")
    drill_repeat = drill.model_copy(update={"event_id": f.reported().event_id, "mode": ev.Mode.LIVE, "exercise": None})
    crossed = f.fact(ev.ComplaintRecorded, first.incident_id, mode=ev.Mode.EXERCISE,
                     complainant_key="resident-key-000000009", behaviour_at=first.occurred_at, category=ev.Category.NOISE,
                     agency=ev.Agency.COUNCIL, uprn=UPRN)
    records = [record(e, offset=n) for n, e in enumerate([first, again, drill, drill_repeat, crossed])]
    ignored = lambda: (metrics.IGNORED.labels("repeated_report")._value.get(),  # noqa: E731
                       metrics.IGNORED.labels("mode_mismatch")._value.get())
    before = ignored()
    rekey, sink = Rekey("by-case", 1, load_config(), FirstReports(no_scan)), Sink()
    asyncio.run(rekey.handle(Batch({TopicPartition("incidents", 0): records}, 6), sink))
    inputs = [row for value in sink.sent for row in orjson.loads(value)]
    assert sorted(row[1] for row in inputs) == [UPRN, UPRN]  # the first report and the drill's, once each
    assert {row[2] for row in inputs} == {"live", "exercise"}
    assert [(offset, error.split(":")[0]) for offset, error, _ in sink.dead] == [
        (1, "repeated_report"), (3, "repeated_report"), (4, "mode_mismatch")]
    after = ignored()
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
