"""The progress watchdog of a stream processor: a partition with lag and no committed progress
for `stall_seconds` stops the worker (exit status 3), so that its supervisor (`muster run
all`, the chaos cluster, Kubernetes' restart policy) starts it again.

Why: faust-streaming can stall after a rejoin. Every partition is seeked to its committed
offset, nothing is consumed, no error is raised (faust-streaming/faust#523, #175, #629; seen
here after a cut of the worker's broker link, docs/chaos.md). A restarted worker takes its
partitions back at once (static membership) and recovers its tables, which the kill -9 tests
show works. Exiting is the remedy Kubernetes' liveness probes would apply, made certain: the
worker does not wait for someone to notice.

What it judges, from outside the consumers: every `interval` seconds it asks the broker for
the group's committed offsets (OffsetFetch) and each partition's first and end offsets
(ListOffsets) for the partitions the worker is assigned (not the tables' changelogs, which
faust reads without committing). A partition is stalled when records are waiting (end offset
beyond the committed one, or the first offset when nothing was ever committed) and the
committed offset has not moved for `stall_seconds` of continuous observation.

What does not count (so the watchdog never turns a fault into a restart loop):
- while the faust app rebalances or recovers its tables, its partitions are not judged (their
  clocks start again when it is done);
- an observation that fails or takes longer than `interval` (the broker unreachable, the link
  slow) clears every clock: a stall needs `stall_seconds` seen in one piece, with the broker
  answering;
- a partition that leaves the assignment is forgotten.

`Progress` is the pure core (offsets in, stalled partitions out); `Watchdog` is the faust
service that feeds it and acts. `stall_seconds` 0 turns it off (MUSTER_PROCESSOR_STALL_SECONDS).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition
from mode import Service
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from services.shared.kafka import make_admin, make_consumer
from services.shared.logging import get_logger
from services.shared.settings import Settings

log = get_logger("muster.watchdog")

EXIT_STALLED = 3  # the worker's exit status when the watchdog stops it
UNSETTLED_FACTOR = 10  # a group rebalancing or recovering for this many stall_seconds is stalled too



def waiting_gauge(service: str, registry: CollectorRegistry = REGISTRY) -> Gauge:
    """muster_<service>_progress_waiting_seconds{group}: defined once per service (its metrics.py)."""
    return Gauge(f"muster_{service}_progress_waiting_seconds",
                 "Longest time any of the group's partitions has had records waiting with no committed progress "
                 "(the progress watchdog stops the worker at MUSTER_PROCESSOR_STALL_SECONDS).", ["group"],
                 registry=registry)


@dataclass(frozen=True)
class Offsets:
    """One partition as the broker sees it: the group's committed offset (None: never), the log's
    first offset and its end offset."""

    committed: int | None
    first: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - max(self.first, self.committed if self.committed is not None else self.first))


@dataclass(frozen=True)
class Stall:
    group: str
    tp: TopicPartition | None  # None: the group itself never settled (a rebalance or recovery that does not end)
    lag: int | None
    committed: int | None
    seconds: float


class Progress:
    """Per (group, partition): the committed offset last seen to move, and since when it has not."""

    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self._since: dict[tuple[str, TopicPartition], tuple[int | None, float]] = {}
        self._unsettled: dict[str, float] = {}

    def observe(self, now: float, group: str, partitions: dict[TopicPartition, Offsets]) -> list[Stall]:
        """The group's assigned partitions as seen at `now`; returns those stalled."""
        self._unsettled.pop(group, None)
        stalls = []
        for key in [k for k in self._since if k[0] == group and k[1] not in partitions]:
            del self._since[key]  # no longer this worker's
        for tp, seen in partitions.items():
            key = (group, tp)
            if not seen.lag:
                self._since.pop(key, None)
                continue
            before = self._since.get(key)
            if before is None or before[0] != seen.committed:
                self._since[key] = (seen.committed, now)  # moved (or first seen waiting): its clock starts
                continue
            if now - before[1] >= self.stall_seconds:
                stalls.append(Stall(group, tp, seen.lag, seen.committed, now - before[1]))
        return stalls

    def unsettled(self, now: float, group: str) -> list[Stall]:
        """The group is rebalancing or recovering: its partitions' clocks start again when it is
        done; a group unsettled for UNSETTLED_FACTOR x stall_seconds is stalled itself."""
        self._clear_clocks(group)
        since = self._unsettled.setdefault(group, now)
        if now - since >= UNSETTLED_FACTOR * self.stall_seconds:
            return [Stall(group, None, None, None, now - since)]
        return []

    def waiting(self, now: float, group: str) -> float:
        """Seconds the group's longest-waiting partition has gone without committed progress."""
        return max((now - since for (g, _), (_, since) in self._since.items() if g == group), default=0.0)

    def forget(self) -> None:
        """Every clock starts again (an observation failed: time unseen never counts)."""
        self._since.clear()
        self._unsettled.clear()

    def _clear_clocks(self, group: str) -> None:
        for key in [k for k in self._since if k[0] == group]:
            del self._since[key]


@dataclass
class Watched:
    """One consumer group of the worker: its partitions now, and whether they can be judged now."""

    group: str
    assigned: Callable[[], Iterable[TopicPartition]]
    settled: Callable[[], bool] = lambda: True


class Watchdog(Service):
    """Started with the faust app; every `interval` seconds observes each watched group."""

    def __init__(self, settings: Settings, stall_seconds: float, *, interval: float | None = None,
                 on_stall: Callable[[list[Stall]], None] | None = None, waiting: Gauge | None = None,
                 **kwargs) -> None:
        self.settings, self.waiting = settings, waiting
        self.progress = Progress(stall_seconds)
        self.interval = interval or max(1.0, min(10.0, stall_seconds / 4))
        self.watched: list[Watched] = []
        self.on_stall = on_stall or stop_worker
        super().__init__(**kwargs)

    def watch(self, watched: Watched) -> None:
        self.watched.append(watched)

    @Service.task
    async def _observe(self) -> None:
        if self.progress.stall_seconds <= 0:
            return
        while not self.should_stop:
            admin, consumer = make_admin(self.settings), make_consumer(self.settings, group_id=None)
            try:
                await asyncio.wait_for(admin.start(), self.interval)
                await asyncio.wait_for(consumer.start(), self.interval)
                while not self.should_stop:
                    await self.sleep(self.interval)
                    stalls = await self.check(admin, consumer)
                    if stalls:
                        self.on_stall(stalls)
                        return
            except Exception as exc:  # noqa: BLE001 - the broker is not there (yet): connect again
                log.warning("watchdog.connect_failed", error_class=type(exc).__name__)
                self.progress.forget()
                await self.sleep(self.interval)
            finally:
                await asyncio.gather(admin.close(), consumer.stop(), return_exceptions=True)

    async def check(self, admin, consumer) -> list[Stall]:
        """One observation of every watched group; [] when none is stalled or nothing could be seen."""
        try:
            seen = await asyncio.wait_for(self._offsets(admin, consumer), self.interval)
        except Exception as exc:  # noqa: BLE001 - unseen is never stalled: every clock starts again
            log.info("watchdog.unseen", error_class=type(exc).__name__, reason=str(exc)[:200])
            self.progress.forget()
            return []
        now = time.monotonic()
        stalls = []
        for group, partitions in seen.items():
            stalls += self.progress.unsettled(now, group) if partitions is None else \
                self.progress.observe(now, group, partitions)
            if self.waiting is not None:
                self.waiting.labels(group).set(self.progress.waiting(now, group))
        return stalls

    async def _offsets(self, admin, consumer) -> dict[str, dict[TopicPartition, Offsets] | None]:
        """Each group's assigned partitions as the broker sees them (None: the group is not settled)."""
        out: dict[str, dict[TopicPartition, Offsets] | None] = {}
        for w in self.watched:
            if not w.settled():
                out[w.group] = None
                continue
            tps = sorted({TopicPartition(tp.topic, tp.partition) for tp in w.assigned()})
            if not tps:
                out[w.group] = {}
                continue
            committed = await admin.list_consumer_group_offsets(w.group, partitions=tps)
            firsts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
            if not w.settled():  # a rebalance began while we asked
                out[w.group] = None
                continue
            out[w.group] = {tp: Offsets(committed[tp].offset if tp in committed and committed[tp].offset >= 0
                                        else None, firsts[tp], ends[tp]) for tp in tps}
        return out


def stop_worker(stalls: list[Stall]) -> None:
    """Log each stall and end the process (EXIT_STALLED) at once: a stalled faust worker may not
    stop cleanly, and nothing is lost (at-least-once: the next worker reads from the committed
    offsets and recovers its tables from their changelogs)."""
    for s in stalls:
        log.error("watchdog.stalled", group=s.group, topic=s.tp.topic if s.tp else None,
                  partition=s.tp.partition if s.tp else None, lag=s.lag, committed=s.committed,
                  seconds=round(s.seconds, 1), action="exit", exit_status=EXIT_STALLED)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_STALLED)
