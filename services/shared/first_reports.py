"""What each incident's first report fixed, for a stateless stage reading the incidents topic.

The shared rule (services/shared/admission.py `refusal`) needs, per incident, the mode of
its first report. The projector keeps it in its store and the escalation processor in its
table; the re-keying stages of tension and casework keep nothing, so they ask this.

The incidents topic is keyed by incident, so every fact of an incident is on one source
partition: per source partition, a map incident -> mode, in memory. A partition's map is
built again whenever the stage's next batch there does not follow the last offset it saw
(first sight, a restart, partitions moving between workers): the partition's reports
before that offset are read again, by their `event_type` and `mode` headers and key (a
record without them is decoded). That read, and the map, grow with the topic's retention:
kept compactly, an incident is its 16-byte id (a str only for an id that is not a UUID) and a
shared mode string, about 100 bytes an incident in a dict (bench/tension_memory.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping

from aiokafka.structs import TopicPartition

from services.shared.admission import Refusal, Reported, refusal
from services.shared.codec import PoisonRecord, decode, header
from services.shared.settings import Settings

REPORTED = "IncidentReported"
SCAN_RECORDS = 5000  # records per fetch while a partition's reports are read again

# {partition: read its reports before this offset} -> {partition: {incident key: mode}}
Scan = Callable[[Mapping[int, int]], Awaitable[dict[int, dict[bytes | str, str]]]]
_MODES: dict[str, str] = {}  # one string per mode, shared by every entry of every map


def incident_key(incident_id: object) -> bytes | str:
    """An incident's key in the map: its UUID's 16 bytes (49 bytes of object, not 85 for the
    36-character string); an id that is not a UUID stays the string it is."""
    if isinstance(incident_id, uuid.UUID):
        return incident_id.bytes
    if isinstance(incident_id, bytes):  # already a key
        return incident_id
    text = str(incident_id)
    try:
        return uuid.UUID(text).bytes
    except ValueError:
        return text


def _mode(mode: object) -> str:
    text = str(mode)
    return _MODES.setdefault(text, text)


class FirstReports:
    """One stage's view of the first reports on the partitions of `topic` it reads."""

    def __init__(self, scan: Scan) -> None:
        self._scan = scan
        self.modes: dict[int, dict[bytes | str, str]] = {}  # partition -> incident_key -> mode
        self.next: dict[int, int] = {}  # source partition -> offset after the last record seen
        self.scans = 0  # partitions read again (a restart or a rebalance each)

    @classmethod
    def on_topic(cls, settings: Settings, topic: str) -> "FirstReports":
        async def scan(until: Mapping[int, int]) -> dict[int, dict[str, str]]:
            return await read_first_reports(settings, topic, until)

        return cls(scan)

    async def ensure(self, starts: Mapping[int, int]) -> None:
        """Before a batch: `starts` is {partition: the batch's first offset there}. Every partition
        whose map does not reach that offset is read again up to it."""
        stale = {p: o for p, o in starts.items() if self.next.get(p) != o}
        if not stale:
            return
        found = await self._scan(stale) if any(o > 0 for o in stale.values()) else {}
        for partition, offset in stale.items():
            self.modes[partition] = {incident_key(i): _mode(m) for i, m in found.get(partition, {}).items()}
            self.next[partition] = offset
        self.scans += len(stale)

    def refusal(self, partition: int, offset: int, event_type: str, mode: object, incident_id: object) -> Refusal | None:
        """Every record of the batch in log order, read or skipped (`event_type` None: a record
        the stage does not read, which only moves the offset on)."""
        self.next[partition] = offset + 1
        if event_type is None:
            return None
        known = self.modes.setdefault(partition, {})
        key = incident_key(incident_id)
        first = known.get(key)
        why = refusal(Reported(first) if first is not None else None, event_type, str(mode), str(incident_id))
        if why is None and event_type == REPORTED:
            known[key] = _mode(mode)
        return why


def reported_by_headers(record) -> tuple[str, str] | None:
    """(incident id, mode) of an IncidentReported record, from its key and headers alone; None
    when the headers say it is another fact. Raises PoisonRecord when they cannot say."""
    kind = header(record.headers, "event_type")
    if kind is not None and kind != REPORTED:
        return None
    mode = header(record.headers, "mode")
    if kind == REPORTED and mode is not None and record.key:
        try:
            return str(uuid.UUID(record.key.decode())), mode
        except (ValueError, UnicodeDecodeError):
            pass
    event = decode(record.value)  # no headers (a partner's producer, a restored backup): the record itself
    if getattr(event, "event_type", None) != REPORTED:
        return None
    return str(event.incident_id), str(event.mode)


async def read_first_reports(settings: Settings, topic: str, until: Mapping[int, int]
                             ) -> dict[int, dict[bytes | str, str]]:
    """Each partition's first reports before its offset in `until` (the topic read from its start),
    keyed by `incident_key`."""
    from services.shared.kafka import make_consumer

    found: dict[int, dict[bytes | str, str]] = {p: {} for p in until}
    wanted = {TopicPartition(topic, p): o for p, o in until.items() if o > 0}
    if not wanted:
        return found
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        left = set(wanted)
        while left:
            for tp in list(left):
                if await consumer.position(tp) >= wanted[tp]:
                    left.discard(tp)
            if not left:
                break
            for tp, records in (await consumer.getmany(*left, timeout_ms=500, max_records=SCAN_RECORDS)).items():
                modes = found[tp.partition]
                for record in records:
                    if record.offset >= wanted[tp]:
                        break
                    try:
                        reported = reported_by_headers(record)
                    except PoisonRecord:
                        continue
                    if reported is not None:
                        modes.setdefault(incident_key(reported[0]), _mode(reported[1]))
    finally:
        await consumer.stop()
    return found
