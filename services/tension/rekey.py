"""tension-rekey: the incidents topic, re-keyed by ward onto the by-ward topic, in batches.

faust's per-event stream machinery alone held one worker under 5,000 events/s. This stage is
stateless, so it is a services.shared.stage.Stage run by a BatchStage (group
`<app id>-rekey`): `getmany` batches, facts tension does not read skipped on their
`event_type` header, the rest decoded narrowly (facts.py), indicators routed in source
order to the by-ward partition that owns their ward, all sends awaited together, and only
then the batch's offsets committed (at least once: a record seen twice after a crash is
recognised by the scorer, by incident id).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import orjson

from services.shared.codec import PoisonRecord
from services.shared.events import Mode
from services.shared.stage import Batch, Sink
from services.tension import metrics
from services.tension.facts import read_fact
from services.tension.reports import FirstReports
from services.tension.rules import indicator, ward_partition

ROWS_PER_RECORD = 1000  # indicators per by-ward record: well under the broker's message size limit


def route(records: list, sources: int, partitions: int, dead: list,
          reports: FirstReports | None = None) -> dict[int, list[list]]:
    """Packed indicators per by-ward partition (of `partitions`), in source order; unreadable
    records into `dead`. `sources`: partitions of the incidents topic. With `reports`, a repeated
    report or a fact of another mode than its incident's is ignored (services/shared/admission.py):
    counted and into `dead` with the reason."""
    routed: dict[int, list[list]] = defaultdict(list)
    for record in records:
        try:
            fact = read_fact(record.value, record.headers)
        except PoisonRecord as exc:
            dead.append((record, exc))
            continue
        why = reports.observe(record.partition, record.offset, fact) if reports is not None else None
        if why is not None:
            metrics.IGNORED.labels(why.reason).inc()
            dead.append((record, str(why)))
            continue
        if fact is None:
            continue
        ind = indicator(fact, record.partition, sources)
        if ind is None:
            continue
        if fact.mode is not Mode.LIVE:
            metrics.EXERCISE.inc()
        if ind.ward is None:  # an update: the partition holding its report applies it
            for partition in range(partitions):
                routed[partition].append(ind.pack())
        else:
            routed[ward_partition(ind.ward, partitions)].append(ind.pack())
    return routed


class Rekey:
    """Re-keys one batch of the incidents topic onto `by_ward_topic` (of `partitions`)."""

    def __init__(self, by_ward_topic: str, partitions: int, declared_sources: int,
                 reports: FirstReports | None = None) -> None:
        self.by_ward_topic, self.partitions, self.declared_sources = by_ward_topic, partitions, declared_sources
        self.reports = reports

    async def handle(self, batch: Batch, sink: Sink) -> None:
        sources = batch.partitions or self.declared_sources
        dead: list = []
        routed: dict[int, list[list]] = defaultdict(list)
        for tp, records in batch.records.items():
            if self.reports is not None and records:
                await self.reports.ensure(tp.partition, records[0].offset)
            for partition, rows in route(records, sources, self.partitions, dead, self.reports).items():
                routed[partition].extend(rows)
        pending = []
        for partition, rows in routed.items():
            for i in range(0, len(rows), ROWS_PER_RECORD):
                pending.append(await sink.send(self.by_ward_topic, str(partition).encode(),
                                               orjson.dumps(rows[i: i + ROWS_PER_RECORD]), partition=partition))
        for record, exc in dead:
            await sink.dead_letter(record, exc, "incidents")
        await asyncio.gather(*pending)
