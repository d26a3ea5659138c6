"""What a simulated day led to: escalations by level and agency, tension alerts by ward,
read back from the processors' output topics."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord

from services.shared import events as ev
from services.shared.codec import PoisonRecord, decode
from services.shared.settings import Settings


async def read_to_end(settings: Settings, topic: str, timeout: float = 30.0,
                      since_ms: int | None = None) -> list[ConsumerRecord]:
    """Every record now on a topic (no consumer group, nothing committed), partition by partition;
    with since_ms, only records whose timestamp is at or after it."""
    from services.shared.kafka import make_consumer, topic_partitions

    tps = await topic_partitions(settings, [topic])
    if not tps:
        return []
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = {tp: 0 for tp in tps}
        if since_ms is not None:
            found = await consumer.offsets_for_times({tp: since_ms for tp in tps})
            starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
        for tp in tps:
            consumer.seek(tp, starts[tp])
        records: list[ConsumerRecord] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if loop.time() > deadline:
                raise TimeoutError(f"reading {topic}: not at the end after {timeout}s")
            for batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


def _decoded(records: list[ConsumerRecord]) -> list[ev.Event]:
    out = []
    for record in records:
        try:
            out.append(decode(record.value))
        except PoisonRecord:
            continue  # not ours to judge here: the processors dead-letter what they cannot read
    return out


@dataclass
class Outcome:
    incidents: int = 0
    escalations_by_level: Counter[int] = field(default_factory=Counter)
    escalations_by_agency: Counter[str] = field(default_factory=Counter)
    stood_down: int = 0
    tension_by_ward: dict[str, tuple[int, str]] = field(default_factory=dict)  # ward name -> (alerts, level now)

    def lines(self) -> list[str]:
        levels = ", ".join(f"level {lvl}: {n}" for lvl, n in sorted(self.escalations_by_level.items())) or "none"
        agencies = ", ".join(f"{a} {n}" for a, n in self.escalations_by_agency.most_common()) or "none"
        wards = ", ".join(f"{w} {n} (now {level})" for w, (n, level) in
                          sorted(self.tension_by_ward.items(), key=lambda kv: -kv[1][0])) or "none"
        return [
            f"  incidents raised:        {self.incidents}",
            f"  escalations by level:    {levels}" + (f"; stood down {self.stood_down}" if self.stood_down else ""),
            f"  escalations by agency:   {agencies}",
            f"  tension alerts by ward:  {wards}",
        ]


def summarise(incidents: int, incident_ids: set[uuid.UUID], escalations: list[ev.Event],
              tension: list[ev.Event]) -> Outcome:
    """Pure: the escalations of this run's incidents, and every tension alert given."""
    outcome = Outcome(incidents=incidents)
    for event in escalations:
        if getattr(event, "incident_id", None) not in incident_ids:
            continue
        if isinstance(event, ev.EscalationRaised):
            outcome.escalations_by_level[event.level] += 1
            outcome.escalations_by_agency.update(a.value for a in event.agencies)
        elif isinstance(event, ev.EscalationStoodDown):
            outcome.stood_down += 1
    for event in tension:
        if isinstance(event, ev.TensionLevelChanged):
            count, _ = outcome.tension_by_ward.get(event.ward_name, (0, ""))
            outcome.tension_by_ward[event.ward_name] = (count + 1, event.new_level.value)
    return outcome


async def read_outcome(settings: Settings, incidents: int, incident_ids: set[uuid.UUID],
                       since_ms: int | None = None) -> Outcome:
    from services.shared.topics import TopicCatalog

    catalog = TopicCatalog.from_settings(settings)
    escalations = _decoded(await read_to_end(settings, catalog.name("escalations.all"), since_ms=since_ms))
    tension = _decoded(await read_to_end(settings, catalog.name("tension.alerts"), since_ms=since_ms))
    return summarise(incidents, incident_ids, escalations, tension)
