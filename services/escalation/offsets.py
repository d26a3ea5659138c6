"""Where the faust group starts on the internal topics its agents read: at a committed offset >= 1.

faust 0.15.3 pauses its stream partitions during table recovery only in its own
bookkeeping: its aiokafka consumer keeps fetching them and faust discards what it fetched.
When recovery completes it seeks back to the committed offsets, but aiokafka's
`seek_to_committed` leaves a partition alone when its committed offset is missing or 0
(`if offset and offset > 0`). So after a kill -9 before the group's first commit on a
partition, a restarted worker silently skipped every record it fetched during recovery:
the stall the crash test used to hit (positions advanced, nothing delivered, nothing
paused). Here every partition of those topics gets a marker record when the topic is
created and the group a committed offset just past it; at each start, a partition without
a committed offset (e.g. expired while the group was empty) gets its log start offset if
that is past 0. The agents skip marker records.
"""

from __future__ import annotations

from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from services.shared.kafka import make_consumer, make_producer
from services.shared.logging import get_logger
from services.shared.settings import Settings

MARKER_KEY = b"muster:partition-start"
log = get_logger("muster.escalation")


async def mark(settings: Settings, topics: list[str], partitions: int) -> dict[TopicPartition, int]:
    """A marker record on every partition of newly created topics: the offset just past each."""
    if not topics:
        return {}
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = {TopicPartition(t, p): await producer.send(t, b"", key=MARKER_KEY, partition=p)
                for t in topics for p in range(partitions)}
        return {tp: (await fut).offset + 1 for tp, fut in sent.items()}
    finally:
        await producer.stop()


async def commit_starts(settings: Settings, group: str, topics: list[str], partitions: int,
                        marked: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Commit, for the group, a start >= 1 on every partition of `topics` that has no committed offset."""
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        missing = {}
        for tp in tps:
            if await consumer.committed(tp) is None:
                start = marked.get(tp, starts[tp])
                if start > 0:
                    missing[tp] = start
        if missing:
            await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in missing.items()})
        return missing
    except (CommitFailedError, KafkaError) as exc:  # a worker of the group is running: it commits its own
        log.warning("escalation.start_offsets_not_committed", group=group, reason=str(exc)[:200])
        return {}
    finally:
        await consumer.stop()


async def ensure_starts(settings: Settings, group: str, topics: list[str], partitions: int, created: list[str]) -> None:
    marked = await mark(settings, created, partitions)
    committed = await commit_starts(settings, group, topics, partitions, marked)
    if committed:
        log.info("escalation.start_offsets_committed", partitions=len(committed))
