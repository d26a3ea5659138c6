"""Where the faust group starts on the internal topics its agents read: at a committed offset >= 1.

faust 0.15.3 pauses its stream partitions during table recovery only in its own
bookkeeping: its aiokafka consumer keeps fetching them and faust discards what it fetched.
When recovery completes it seeks back to the committed offsets, but aiokafka's
`seek_to_committed` leaves a partition alone when its committed offset is missing or 0
(`if offset and offset > 0`). So after a kill -9 before the group's first commit on a
partition, a restarted worker silently skipped every record it fetched during recovery:
the stall the crash test used to hit (positions advanced, nothing delivered, nothing
paused). Here, at each start, every partition of those topics without a committed offset
for the group gets one: an empty partition (a topic just created, by `muster topics apply`
or by the worker itself) first gets a marker record and the offset just past it; a
partition whose records expired gets its log start offset if that is past 0, and so does a
partition whose committed offset is below its log start (records expired while no worker
ran). The agents skip marker records.
"""

from __future__ import annotations

from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from services.shared.kafka import make_consumer, make_producer
from services.shared.logging import get_logger
from services.shared.settings import Settings

MARKER_KEY = b"muster:partition-start"
log = get_logger("muster.escalation")


async def mark(settings: Settings, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """A marker record on each of these partitions: the offset just past each."""
    if not tps:
        return {}
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = {tp: await producer.send(tp.topic, b"", key=MARKER_KEY, partition=tp.partition) for tp in tps}
        return {tp: (await fut).offset + 1 for tp, fut in sent.items()}
    finally:
        await producer.stop()


async def ensure_starts(settings: Settings, group: str, topics: list[str], partitions: int) -> dict[TopicPartition, int]:
    """Commit, for the group, a start >= 1 on every partition of `topics` that has no committed offset."""
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        consumer.assign(tps)
        starts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        committed = {tp: await consumer.committed(tp) for tp in tps}
        uncommitted = [tp for tp in tps if committed[tp] is None]
        missing = await mark(settings, [tp for tp in uncommitted if ends[tp] == 0])
        missing |= {tp: starts[tp] for tp in uncommitted if tp not in missing and starts[tp] > 0}
        # a committed offset whose records expired: their log start (faust_commits.py would
        # otherwise wait for the record at the committed offset, which will never come)
        missing |= {tp: starts[tp] for tp in tps if committed[tp] is not None and committed[tp] < starts[tp]}
        if missing:
            await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in missing.items()})
            log.info("escalation.start_offsets_committed", partitions=len(missing))
        return missing
    except (CommitFailedError, KafkaError) as exc:  # a worker of the group is running: it commits its own
        log.warning("escalation.start_offsets_not_committed", group=group, reason=str(exc)[:200])
        return {}
    finally:
        await consumer.stop()
