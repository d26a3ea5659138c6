"""casework-rekey: the facts casework counts, re-keyed by case onto the by-case topic.

A stage (services.shared.stage) with a consumer group of its own on the incidents topic:
records of a type casework does not read are skipped on their `event_type` header; the
rest are decoded (a record that cannot be is dead-lettered with the field named), turned
into case inputs (inputs.py: no free text, no people) and sent, in source order, to the
partition of the by-case topic that owns each case. At least once: an input seen twice is
recognised by the case (each incident counts once; the steps are idempotent).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import defaultdict

import orjson

from services.casework import metrics
from services.casework.config import CaseworkConfig
from services.casework.inputs import inputs_of
from services.shared.admission import Refusal
from services.shared.codec import PoisonRecord, decode, detached, header
from services.shared.first_reports import FirstReports
from services.shared.stage import Batch, Sink, dead_letter_all

# The facts casework reads; everything else on the incidents topic is skipped unread.
READS = frozenset({
    "IncidentReported", "ComplaintRecorded", "AsbCaseReviewResponded", "ClosureNoticeIssued", "ClosureOrderApplied",
    "ClosureOrderMade", "ClosureOrderExtended", "WarrantExecuted", "CasePassedToSafeguarding",
})
ROWS_PER_RECORD = 1000


def case_partition(key: str, partitions: int) -> int:
    """The by-case partition that owns a case (stable across processes and restarts)."""
    return zlib.crc32(key.encode()) % partitions


class Rekey:
    def __init__(self, by_case_topic: str, partitions: int, config: CaseworkConfig,
                 reports: FirstReports | None = None) -> None:
        self.by_case_topic, self.partitions, self.config = by_case_topic, partitions, config
        # What each incident's first report fixed (services/shared/first_reports.py): a repeated
        # report or a fact of another mode is ignored (services/shared/admission.py), counted and
        # dead-lettered with the reason, so no incident counts twice or in another mode's case.
        self.reports = reports
        self._kinds = {
            "premises_categories": config.premises.categories,
            "safeguarding_categories": config.safeguarding.categories,
            "asb_categories": config.asb_case_review.categories,
        }

    def route(self, records: list, dead: list) -> dict[int, list[list]]:
        routed: dict[int, list[list]] = defaultdict(list)
        for record in records:
            kind = header(record.headers, "event_type")
            if kind is not None and kind not in READS:
                self._admitted(record, None)
                continue
            try:
                event = decode(record.value)
            except PoisonRecord as exc:
                dead.append((record, detached(exc)))
                self._admitted(record, None)
                continue
            why = self._admitted(record, event)
            if why is not None:
                metrics.IGNORED.labels(why.reason).inc()
                dead.append((record, str(why)))
                continue
            for item in inputs_of(event, **self._kinds):
                routed[case_partition(item.key, self.partitions)].append(item.pack())
        return routed

    def _admitted(self, record, event) -> Refusal | None:
        if self.reports is None:
            return None
        if event is None or getattr(event, "event_type", None) not in READS:
            return self.reports.refusal(record.partition, record.offset, None, None, None)
        return self.reports.refusal(record.partition, record.offset, event.event_type, event.mode, event.incident_id)

    async def handle(self, batch: Batch, sink: Sink) -> None:
        dead: list = []
        if self.reports is not None:
            await self.reports.ensure({tp.partition: records[0].offset for tp, records in batch.records.items() if records})
        routed: dict[int, list[list]] = defaultdict(list)
        for records in batch.records.values():
            for partition, rows in self.route(records, dead).items():
                routed[partition].extend(rows)
        pending = []
        for partition, rows in routed.items():
            for i in range(0, len(rows), ROWS_PER_RECORD):
                pending.append(await sink.send(self.by_case_topic, str(partition).encode(),
                                               orjson.dumps(rows[i: i + ROWS_PER_RECORD]), partition=partition))
        await dead_letter_all(sink, [(record, exc, "incidents") for record, exc in dead])
        await asyncio.gather(*pending)
