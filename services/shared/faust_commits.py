"""faust never commits past a record its agents did not process (at least once, as promised).

faust-streaming 0.15.3's `Consumer._new_offset` (the offset it commits for a partition: the
end of the first run of consecutive acknowledged offsets) withholds a commit when the run
does not start at the committed offset only if it starts *two or more* past it
(`min(acked) - committed > 1`). A single record missing at the head is committed over: it
is taken for a compacted-away offset, but it can be a record faust fetched and dropped
without delivering it to its agent. That happens after a rebalance: a record fetched while
the worker's flow was suspended for table recovery (or in the previous generation) is
skipped by the stream, the consumer's read position has already passed it, and the next
record is delivered, acknowledged and committed past it, so the skipped record is lost for
good: a restart starts after it. Upstream: faust-streaming/faust#606, PR #707 (open).

Found by `muster chaos` (2026-12-03): after a 10 s cut of the escalation worker's broker
link, one pack of 97 facts (packed partition 4, the offset the group had committed,
written just as the link came back) never reached the incident agent; four of its reports'
acknowledgement deadlines were never escalated.

`install()` replaces the method with one that commits only the run of acknowledged offsets
that begins at the committed offset, never over a gap faust recorded in what it read (a second
lost pack, the same day, went through such a gap: see `new_offset`). The
partition's committed offset then stands still while records wait, so the progress watchdog
(services/shared/watchdog.py) stops the worker and its restart reads the record again (the
agents recognise what they already applied by its source offset). Late, never lost.

`Reread` makes "late" seconds rather than a restart. A held head is remembered (`held`: the
partition, the committed offset, since when); a record at the committed offset that is still
unacknowledged `REREAD_AFTER_S` after later records of its partition were acknowledged was
skipped, not slow (one agent per topic processes a partition in order), so the worker seeks
that partition back to its committed offset and reads it again, with no rejoin and no table
recovery. This is also faust-streaming#596 (commits blocked behind two or more skipped
records while the agent goes on), which before needed the watchdog's exit. The re-read range
is what a restart would read again; the watchdog stays as the backstop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from faust.transport.consumer import Consumer
from faust.utils.functional import consecutive_numbers
from mode import Service
from prometheus_client import Counter

from services.shared.logging import get_logger

log = get_logger("muster.faust_commits")

REREAD_AFTER_S = 5.0  # a held head this old was skipped: its partition is read again from it
HELD = "_muster_held"  # on a consumer: {tp: (committed offset, monotonic time first held)}

_REREADS: dict[str, Counter] = {}


def rereads_counter(service: str) -> Counter:
    """muster_<service>_rereads_total{group}: defined once per service and process."""
    if service not in _REREADS:
        _REREADS[service] = Counter(
            f"muster_{service}_rereads_total",
            "Partitions read again from the committed offset, because the record there was skipped by faust "
            "while later ones were processed (services/shared/faust_commits.py).", ["group"])
    return _REREADS[service]

_UPSTREAM = Consumer._new_offset  # noqa: SLF001 - faust 0.15.3's commit computation, replaced below


def new_offset(self: Any, tp: Any) -> int | None:
    """The offset to commit for `tp` (None: nothing to commit yet): the end of the run of
    acknowledged offsets that begins at the committed offset. A run that begins past it commits
    nothing (its head is held: `Reread` reads it again), and faust's read gaps are never
    committed over: the topics the agents read are neither compacted nor transactional, so their
    offsets are contiguous and a jump in what the consumer handed on is a record faust dropped
    (the chaos run of 2026-12-03: after a cut, a gap from one past the committed offset let the
    commit pass a pack of 67 facts that was never processed). Records that expired below the log
    start are the one real jump: `Reread` moves the committed offset to the log start for them."""
    acked = self._acked[tp]
    gaps = self._gap.get(tp)
    if gaps:
        gaps.clear()  # faust's record of read jumps: never bridged here (kept, it would only grow)
    if not acked:
        return None
    committed = self._committed_offset[tp]
    acked.sort()
    if committed is not None and acked[0] > committed:
        hold(self, tp, committed, time.monotonic())
        return None
    held(self).pop(tp, None)
    batch = next(consecutive_numbers(acked))
    acked[: len(batch)] = []
    self._acked_index[tp].difference_update(batch)
    return batch[-1] + 1


def held(consumer: Any) -> dict[Any, tuple[int, float]]:
    """The consumer's held heads: partition -> (committed offset, since when)."""
    found = getattr(consumer, HELD, None)
    if found is None:
        found = {}
        setattr(consumer, HELD, found)
    return found


def hold(consumer: Any, tp: Any, committed: int, now: float) -> None:
    """Remember that `tp`'s commit waits for the record at `committed` (the first time only)."""
    heads = held(consumer)
    if heads.get(tp, (None, 0.0))[0] != committed:
        heads[tp] = (committed, now)


def due(heads: dict[Any, tuple[int, float]], now: float, after_s: float) -> list[tuple[Any, int]]:
    """The held heads waited on for `after_s` or more: (partition, offset to read again from)."""
    return [(tp, offset) for tp, (offset, since) in heads.items() if now - since >= after_s]


class Reread(Service):
    """Reads a partition again from its committed offset when the record there was skipped
    (see the module's docstring). Judges only while `settled()` (not rebalancing or recovering
    tables) and only partitions still assigned, committed where they were held, and whose
    record there is still unacknowledged."""

    def __init__(self, app: Any, group: str, settled: Callable[[], bool], service: str = "processor",
                 after_s: float = REREAD_AFTER_S, **kwargs: Any) -> None:
        self.app = app
        self.group = group
        self.rereads = rereads_counter(service)
        self.settled = settled
        self.after_s = after_s
        super().__init__(**kwargs)

    @Service.timer(1.0)
    async def _tick(self) -> None:
        if self.settled():
            await self.reread(self.app.consumer, time.monotonic())

    async def reread(self, consumer: Any, now: float) -> list[tuple[Any, int]]:
        """Seek every partition whose held head is due; returns what was read again."""
        heads = held(consumer)
        done = []
        for tp, offset in due(heads, now, self.after_s):
            del heads[tp]
            if (tp not in consumer.assignment() or consumer._committed_offset[tp] != offset  # noqa: SLF001
                    or offset in consumer._acked_index[tp]):  # noqa: SLF001 - moved on, or no longer held
                continue
            start = (await consumer.earliest_offsets(tp)).get(tp)
            if start is not None and offset < start:  # expired unread: nothing below the log start can be read
                consumer._committed_offset[tp] = start  # noqa: SLF001 - the run now begins at the first record left
                log.warning("faust_commits.expired", group=self.group, topic=tp.topic, partition=tp.partition,
                            committed=offset, log_start=start)
                continue
            await consumer.seek(tp, offset)
            self.rereads.labels(self.group).inc()
            log.warning("faust_commits.reread", group=self.group, topic=tp.topic, partition=tp.partition,
                        offset=offset)
            done.append((tp, offset))
        return done


def install() -> None:
    """Make every faust consumer of this process use `new_offset` (idempotent)."""
    Consumer._new_offset = new_offset  # noqa: SLF001 - no public hook for the offset faust commits


def upstream() -> Any:
    """faust's own method, for the regression test that shows what it did."""
    return _UPSTREAM
