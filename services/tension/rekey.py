"""tension-rekey: the incidents and calendar topics, re-keyed by ward onto the by-ward topic, in batches.

faust's per-event stream machinery alone held one worker under 5,000 events/s. This stage is
stateless, so it is a services.shared.stage.BatchStage (group `<app id>-rekey`): `getmany`
batches, facts tension does not read skipped on their `event_type` header, the rest decoded
narrowly (facts.py), indicators routed in source order to the by-ward partition that owns
their ward (corrections and calendar facts to every partition), all sends awaited together,
and only then the batch's offsets committed (at least once: a record seen twice after a
crash is recognised by the scorer, by incident id).

Source partitions are numbered the incidents topic's first, then the calendar topic's. After
every poll the stage tells every by-ward partition which of its source partitions it has
read to their end (position at the high watermark): an idle partition holds no clock back.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import orjson
from aiokafka.structs import TopicPartition

from services.shared.codec import PoisonRecord
from services.shared.events import Mode
from services.shared.stage import BatchStage
from services.tension import metrics
from services.tension.facts import read_calendar_fact, read_fact
from services.tension.rules import idle_marker, indicator, ward_partition
from services.tension.state import REPORT
from services.tension.wiring import Wiring, dead_letter

ROWS_PER_RECORD = 1000  # indicators per by-ward record: well under the broker's message size limit


def route(w: Wiring, records: list, sources: int, dead: list, *, offset: int = 0,
          calendar: bool = False) -> dict[int, list[list]]:
    """Packed indicators per by-ward partition, in source order; unreadable records into `dead`."""
    partitions = w.config.processing.partitions
    routed: dict[int, list[list]] = defaultdict(list)
    for record in records:
        try:
            fact = read_calendar_fact(record.value, record.headers) if calendar else read_fact(record.value, record.headers)
        except PoisonRecord as exc:
            dead.append((record, exc))
            continue
        if fact is None:
            continue
        ind = indicator(fact, offset + record.partition, sources, w.config)
        if ind is None:
            continue
        if fact.mode is not Mode.LIVE:
            metrics.EXERCISE.inc()
        if ind.kind == REPORT:
            routed[ward_partition(ind.ward, partitions)].append(ind.pack())
        else:  # a correction (the partition holding its report applies it) or a calendar fact
            row = ind.pack()
            for partition in range(partitions):
                routed[partition].append(row)
    return routed


class Rekey(BatchStage):
    """The re-keying stage; started with the faust app (after table recovery), stopped with it."""

    def __init__(self, wiring: Wiring, **kwargs: Any) -> None:
        self.w = wiring
        processing = wiring.config.processing
        super().__init__(wiring.settings, wiring.incidents_topic, wiring.rekey_group, batch_max=processing.batch_max,
                         within_ms=int(processing.batch_within * 1000), also=(wiring.calendar_topic,), **kwargs)
        self._told: dict[int, bool] = {}
        self._caught_up: dict[int, float] = {}  # source partition -> since when read to its end (monotonic)

    def _sources(self) -> tuple[int, int]:
        """(incidents partitions, all source partitions)."""
        incidents = len(self.consumer.partitions_for_topic(self.topic) or ()) or self.w.declared_sources
        calendar = len(self.consumer.partitions_for_topic(self.w.calendar_topic) or ()) or self.w.declared_calendar
        return incidents, incidents + calendar

    async def _idle(self, incidents: int) -> dict[int, bool]:
        """Source partition -> idle, for the partitions this worker owns: read to its end (the
        high watermark of the last fetch) for `idle_after` at least, so a producer's next
        batch in flight does not make it idle."""
        out, now = {}, time.monotonic()
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            source = (0 if tp.topic == self.topic else incidents) + tp.partition
            if await self.consumer.position(tp) >= highwater:
                since = self._caught_up.setdefault(source, now)
                out[source] = now - since >= self.w.config.processing.idle_after
            else:
                self._caught_up.pop(source, None)
                out[source] = False
        return out

    async def handle(self, batch: dict[TopicPartition, list]) -> None:
        incidents, sources = self._sources()
        dead: list = []
        routed: dict[int, list[list]] = defaultdict(list)
        for tp, records in batch.items():
            calendar = tp.topic != self.topic
            for partition, rows in route(self.w, records, sources, dead, offset=incidents if calendar else 0,
                                         calendar=calendar).items():
                routed[partition].extend(rows)
        idle = await self._idle(incidents)
        marker = idle_marker(idle, sources).pack()
        for partition in range(self.w.config.processing.partitions):
            routed[partition].append(marker)
        for record, exc in dead:
            await dead_letter(self.w, "calendar" if record.topic != self.topic else "incidents", record, exc)
        await self._send(routed)
        self._told = idle

    async def after_poll(self, batch: dict[TopicPartition, list]) -> None:
        if batch or self.consumer is None:
            return
        incidents, sources = self._sources()
        idle = await self._idle(incidents)
        if idle and idle != self._told:  # a partition read to its end (or written again) since last said
            marker = idle_marker(idle, sources).pack()
            await self._send({p: [marker] for p in range(self.w.config.processing.partitions)})
            self._told = idle

    async def _send(self, routed: dict[int, list[list]]) -> None:
        producer = self.w.app.producer
        pending = []
        for partition, rows in routed.items():
            for i in range(0, len(rows), ROWS_PER_RECORD):
                pending.append(await producer.send(
                    self.w.by_ward.get_topic_name(), str(partition).encode(), orjson.dumps(rows[i: i + ROWS_PER_RECORD]),
                    partition, None, None,
                ))
        await asyncio.gather(*pending)
