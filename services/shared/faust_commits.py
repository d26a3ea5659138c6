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

`install()` replaces the method with one that withholds the commit whenever the committed
offset itself was neither acknowledged nor skipped over by the consumer's read (a gap faust
recorded because the offsets it read jumped, as over a compacted or expired range). The
partition's committed offset then stands still while records wait, so the progress watchdog
(services/shared/watchdog.py) stops the worker and its restart reads the record again (the
agents recognise what they already applied by its source offset). Late, never lost.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer
from faust.utils.functional import consecutive_numbers

_UPSTREAM = Consumer._new_offset  # noqa: SLF001 - faust 0.15.3's commit computation, replaced below


def new_offset(self: Any, tp: Any) -> int | None:
    """The offset to commit for `tp` (None: nothing to commit yet). faust's own computation,
    except that a run of acknowledged offsets that does not begin at the committed offset (or
    at a gap the consumer's read jumped over from it) commits nothing."""
    acked = self._acked[tp]
    if not acked:
        return None
    committed = self._committed_offset[tp]
    gap_for_tp = self._gap[tp]
    bridged: set[int] = set()  # offsets the consumer's read jumped over (faust's gaps)
    max_offset = max(acked)
    if gap_for_tp:
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            stuff_to_add: list[int] = []
            for entry in candidates:
                stuff_to_add.extend(range(entry.begin, entry.end))
            bridged.update(stuff_to_add)
            acked.extend(stuff_to_add)
            gap_for_tp.chop(0, max(stuff_to_add[-1], max_offset + 1))
    acked.sort()
    if committed is not None and acked[0] > committed:
        # faust's gaps begin one past the committed offset (its read offset after a seek):
        # the committed record itself was jumped over only if that gap is the run's head
        if not (acked[0] == committed + 1 and acked[0] in bridged):
            return None
    batch = next(consecutive_numbers(acked))
    acked[: len(batch)] = []
    self._acked_index[tp].difference_update(batch)
    return batch[-1] + 1


def install() -> None:
    """Make every faust consumer of this process use `new_offset` (idempotent)."""
    Consumer._new_offset = new_offset  # noqa: SLF001 - no public hook for the offset faust commits


def upstream() -> Any:
    """faust's own method, for the regression test that shows what it did."""
    return _UPSTREAM
