"""What each incident's first report fixed, as the tension re-keying stage needs it.

The shared rule (services/shared/admission.py) needs, per incident, the mode of its first
report. The incidents topic is keyed by incident, so every fact of an incident is on one
source partition: per source partition, a map incident -> mode. It lives in memory and is
rebuilt for a partition whenever the stage's next batch there does not follow the last
offset it saw (first sight, a restart, partitions moving between workers): the partition's
reports before that offset are read again, by their event_type header. That read grows with
the topic; a compacted changelog would bound it (left for when the incidents topic is large).
"""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from services.shared.admission import Refusal, Reported, refusal
from services.shared.codec import PoisonRecord, header
from services.shared.kafka import make_consumer
from services.shared.settings import Settings
from services.tension.facts import read_fact

REPORTED = "IncidentReported"


class FirstReports:
    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings, self.topic = settings, topic
        self.modes: dict[int, dict[str, str]] = {}
        self.next: dict[int, int] = {}  # source partition -> offset after the last record seen

    async def ensure(self, partition: int, first_offset: int) -> None:
        """Before a batch on `partition` starting at `first_offset`: the map holds every report before it."""
        if self.next.get(partition) != first_offset:
            self.modes[partition] = await self._scan(partition, first_offset)
            self.next[partition] = first_offset

    def observe(self, partition: int, offset: int, fact) -> Refusal | None:
        """Every record of the batch, in order (`fact` None: one tension does not read)."""
        self.next[partition] = offset + 1
        if fact is None:
            return None
        known = self.modes.setdefault(partition, {})
        incident = str(fact.incident_id)
        first = known.get(incident)
        why = refusal(Reported(first) if first is not None else None, fact.event_type, fact.mode, incident)
        if why is None and fact.event_type == REPORTED:
            known[incident] = fact.mode.value
        return why

    async def _scan(self, partition: int, until: int) -> dict[str, str]:
        modes: dict[str, str] = {}
        if until <= 0:
            return modes
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while await consumer.position(tp) < until:
                for records in (await consumer.getmany(tp, timeout_ms=500, max_records=5000)).values():
                    for record in records:
                        if record.offset >= until or header(record.headers, "event_type") not in (None, REPORTED):
                            continue
                        try:
                            fact = read_fact(record.value, record.headers)
                        except PoisonRecord:
                            continue
                        if fact is not None and fact.event_type == REPORTED:
                            modes.setdefault(str(fact.incident_id), fact.mode.value)
        finally:
            await consumer.stop()
        return modes
