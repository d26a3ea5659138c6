"""tension-rekey: the incidents and calendar topics, re-keyed by ward onto the by-ward topic, in batches.

faust's per-event stream machinery alone held one worker under 5,000 events/s. This stage is
stateless, so it is a services.shared.stage.Stage run by a BatchStage (group
`<app id>-rekey`): `getmany` batches, facts tension does not read skipped on their
`event_type` header, the rest decoded narrowly (facts.py), indicators routed in source
order to the by-ward partition that owns their ward (corrections and calendar facts to every
partition), all sends awaited together, and only then the batch's offsets committed (at
least once: a record seen twice after a crash is recognised by the scorer, by incident id).

Source partitions are numbered the incidents topic's first, then the calendar topic's. After
every poll (`at_end`: the runner says which partitions are read to their end) the stage tells
every by-ward partition which of its source partitions are idle: read to their end for
`processing.idle_after` at least. An idle partition holds no clock back (rules.frontier).

The stage also keeps each source partition's clock (per mode: the newest occurred_at of the
facts it routed from there, to whichever ward), stamps every fact with the clock just before
it (rules.stamp) and sends the clocks with the idle word: the by-ward partitions' watermark
moves with the whole stream, not only with their own wards' reports. The clocks are
committed with each batch's offsets (the offset commit's metadata), so a restarted worker,
or the next owner of a partition, takes each clock up at exactly the offset it belongs to;
a partition whose committed offset carries none (first sight) starts without one, and its
facts' seen points come from the by-ward partitions' own view until its first fact.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

import orjson
from aiokafka.structs import TopicPartition

from services.shared.codec import PoisonRecord, detached
from services.shared.events import Mode
from services.shared.first_reports import FirstReports
from services.shared.stage import Batch, Sink, dead_letter_all
from services.tension import metrics
from services.tension.config import TensionConfig
from services.tension.facts import read_calendar_fact, read_fact
from services.tension.rules import idle_marker, indicator, stamp, ward_partition
from services.tension.state import MODES, REPORT

# [the partitions] -> {partition: (committed offset, its metadata)}: the stage's group's commits
Committed = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, tuple[int, str]]]]

ROWS_PER_RECORD = 1000  # indicators per by-ward record: well under the broker's message size limit


def route(records: list, sources: int, partitions: int, dead: list, *, config: TensionConfig | None = None,
          offset: int = 0, calendar: bool = False, reports: FirstReports | None = None,
          clocks: dict[tuple[int, str], int] | None = None) -> dict[int, list[list]]:
    """Packed indicators per by-ward partition (of `partitions`), in source order; unreadable
    records into `dead`. `sources`: source partitions in all; `offset`: the first source
    number of this topic's partitions. With `reports` (the incidents topic), a repeated report
    or a fact of another mode than its incident's is ignored (services/shared/admission.py):
    counted and into `dead` with the reason. With `clocks` ((source, mode) -> clock, moved on
    as the records are read, each source partition's in its order), every fact is stamped
    with its source partition's clock just before it (rules.stamp)."""
    routed: dict[int, list[list]] = defaultdict(list)
    for record in records:
        try:
            fact = read_calendar_fact(record.value, record.headers) if calendar else read_fact(record.value, record.headers)
        except PoisonRecord as exc:
            dead.append((record, detached(exc)))
            fact = None
        if reports is not None:
            why = reports.refusal(record.partition, record.offset, *((fact.event_type, fact.mode, fact.incident_id)
                                                                     if fact is not None else (None, None, None)))
            if why is not None:
                metrics.IGNORED.labels(why.reason).inc()
                dead.append((record, str(why)))
                continue
        if fact is None:
            continue
        ind = indicator(fact, offset + record.partition, sources, config)
        if ind is None:
            continue
        clock = stamp(ind, clocks) if clocks is not None else None
        if fact.mode is not Mode.LIVE:
            metrics.EXERCISE.inc()
        if ind.kind == REPORT:
            routed[ward_partition(ind.ward, partitions)].append(ind.pack(clock))
        else:  # a correction (the partition holding its report applies it) or a calendar fact
            row = ind.pack(clock)
            for partition in range(partitions):
                routed[partition].append(row)
    return routed


class Rekey:
    """Re-keys one batch of the incidents and calendar topics onto `by_ward_topic` (of `partitions`)."""

    at_end = True  # the runner hands every poll over, with which partitions are read to their end

    def __init__(self, by_ward_topic: str, partitions: int, declared_sources: int, *, incidents_topic: str,
                 calendar_topic: str, declared_calendar: int, config: TensionConfig,
                 reports: FirstReports | None = None, committed: Committed | None = None) -> None:
        self.by_ward_topic, self.partitions, self.declared_sources = by_ward_topic, partitions, declared_sources
        self.incidents_topic, self.calendar_topic = incidents_topic, calendar_topic
        self.declared_calendar, self.config = declared_calendar, config
        self.reports = reports  # what each incident's first report fixed (services/shared/first_reports.py)
        self.committed = committed  # where each partition's clock was left (None: start without)
        self._caught_up: dict[int, float] = {}  # source partition -> since when read to its end (monotonic)
        self._told: dict[int, bool] = {}
        self.clocks: dict[tuple[int, str], int] = {}  # (source partition, mode) -> its clock
        self._next: dict[TopicPartition, int] = {}  # partition -> offset after the last record routed
        self._incidents = declared_sources  # the incidents topic's partitions, as last seen

    def _source(self, tp: TopicPartition) -> int:
        return (0 if tp.topic == self.incidents_topic else self._incidents) + tp.partition

    def commit_metadata(self, tp: TopicPartition) -> str:
        """The partition's clock, per mode, committed with its offset (BatchStage._commit)."""
        source = self._source(tp)
        return orjson.dumps({"clocks": {mode: self.clocks[source, mode] for mode in MODES
                                        if (source, mode) in self.clocks}}).decode()

    async def _take_up(self, batch: Batch) -> None:
        """Every partition whose batch does not follow the last record routed (first sight, a
        restart, a partition moved here): its clocks as committed at exactly that offset."""
        stale = {tp: records[0].offset for tp, records in batch.records.items()
                 if records and self._next.get(tp) != records[0].offset}
        if not stale:
            return
        found = await self.committed(list(stale)) if self.committed is not None else {}
        for tp, first in stale.items():
            source = self._source(tp)
            for mode in MODES:
                self.clocks.pop((source, mode), None)
            offset, metadata = found.get(tp, (None, ""))
            if offset != first or not metadata:
                continue
            try:
                saved = orjson.loads(metadata).get("clocks", {})
            except (orjson.JSONDecodeError, AttributeError):
                continue  # another writer's metadata: start without a clock
            self.clocks.update({(source, mode): at for mode, at in saved.items()
                                if mode in MODES and isinstance(at, int)})

    def _sources(self, batch: Batch) -> tuple[int, int]:
        incidents = batch.counts.get(self.incidents_topic) or batch.partitions or self.declared_sources
        calendar = batch.counts.get(self.calendar_topic) or self.declared_calendar
        return incidents, incidents + calendar

    def idle(self, batch: Batch, incidents: int, now: float | None = None) -> dict[int, bool]:
        """Source partition -> idle, for the partitions this worker owns: read to its end for
        `idle_after` at least, so the producer's next batch in flight does not make it idle."""
        now = time.monotonic() if now is None else now
        out = {}
        for tp, at_end in batch.at_end.items():
            source = (0 if tp.topic == self.incidents_topic else incidents) + tp.partition
            if batch.records.get(tp):  # it has just been written to: idle only after a quiet spell
                self._caught_up.pop(source, None)
            if at_end:
                out[source] = now - self._caught_up.setdefault(source, now) >= self.config.processing.idle_after
            else:
                self._caught_up.pop(source, None)
                out[source] = False
        return out

    async def handle(self, batch: Batch, sink: Sink) -> None:
        incidents, sources = self._sources(batch)
        self._incidents = incidents
        dead: list = []
        routed: dict[int, list[list]] = defaultdict(list)
        if self.reports is not None:
            await self.reports.ensure({tp.partition: records[0].offset for tp, records in batch.records.items()
                                       if records and tp.topic == self.incidents_topic})
        await self._take_up(batch)
        for tp, records in batch.records.items():
            calendar = tp.topic != self.incidents_topic
            for partition, rows in route(records, sources, self.partitions, dead, config=self.config,
                                         offset=incidents if calendar else 0, calendar=calendar,
                                         reports=None if calendar else self.reports, clocks=self.clocks).items():
                routed[partition].extend(rows)
            if records:
                self._next[tp] = records[-1].offset + 1
        idle = self.idle(batch, incidents)
        if routed or (idle and idle != self._told):  # say it with every batch, and when it changed
            owned = {self._source(tp) for tp in batch.at_end} | {self._source(tp) for tp in batch.records}
            marker = idle_marker(idle, sources, clocks={k: v for k, v in self.clocks.items() if k[0] in owned}).pack()
            for partition in range(self.partitions):
                routed[partition].append(marker)
        pending = []
        for partition, rows in routed.items():
            for i in range(0, len(rows), ROWS_PER_RECORD):
                pending.append(await sink.send(self.by_ward_topic, str(partition).encode(),
                                               orjson.dumps(rows[i: i + ROWS_PER_RECORD]), partition=partition))
        await dead_letter_all(sink, [(record, exc, "calendar" if record.topic == self.calendar_topic else "incidents")
                                     for record, exc in dead])
        await asyncio.gather(*pending)
        self._told = idle
