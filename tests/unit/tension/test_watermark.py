"""The re-keying stage's watermark: each source partition's clock, kept per mode from every fact
tension reads there, stamped on each fact and sent with the idle word to every by-ward
partition. A busy ward elsewhere moves every partition's watermark, so it never holds a quiet
ward's alert back; the clocks are committed with the offsets, so a restart takes them up where
they were; and the live stage, batched any way, publishes what the offline replay does."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import orjson
from aiokafka.structs import TopicPartition

from services.shared.first_reports import FirstReports
from services.shared.stage import Batch
from services.shared.wards import wards
from services.tension.config import load_config
from services.tension.rekey import Rekey
from services.tension.rules import process, to_event, ward_partition
from services.tension.state import ClockState, Indicator
from tests.tension_history import (
    BOW_EAST,
    BY_WARD_PARTITIONS,
    START,
    WHITECHAPEL,
    background,
    bonfire_night,
    report,
)
from tests.unit.tension.test_offline import CALENDAR, INCIDENTS, NAMES, log_of, offline

_BASE = load_config()
CONFIG = _BASE.model_copy(update={"processing": _BASE.processing.model_copy(update={"idle_after": 0.0})})
EVENING = START + timedelta(days=14, hours=19)


async def _no_scan(until):
    return {p: {} for p in until}


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    async def send(self, topic, key, value, partition):
        self.sent.append((partition, value))
        return asyncio.sleep(0)

    async def dead_letter(self, record, error, input_name):
        raise AssertionError(f"nothing here is unreadable: {error}")


class Live:
    """The re-keying stage and the scoring agent's rules, as the workers run them, on a log."""

    def __init__(self, log: dict, *, committed=None) -> None:
        self.log, self.read = log, {tp: 0 for tp in log}
        self.rekey = Rekey("by-ward", BY_WARD_PARTITIONS, 6, incidents_topic=INCIDENTS, calendar_topic=CALENDAR,
                           declared_calendar=1, config=CONFIG, reports=FirstReports(_no_scan), committed=committed)
        self.clocks = {p: ClockState() for p in range(BY_WARD_PARTITIONS)}
        self.wards: dict[int, dict] = {p: {} for p in range(BY_WARD_PARTITIONS)}
        self.changes: list = []
        self.stamps: list[Indicator] = []

    def step(self, take: dict[TopicPartition, int]) -> list:
        """One poll: `take` records from each partition (a partition is busy while it has records
        left to read; `idle_after` is 0 here, so one read to its end is idle at once)."""
        records = {}
        for tp, n in take.items():
            start = self.read[tp]
            if self.log[tp][start:start + n]:
                records[tp] = self.log[tp][start:start + n]
                self.read[tp] = start + len(records[tp])
        at_end = {tp: self.read[tp] == len(rows) for tp, rows in self.log.items()}
        sink = _Sink()
        asyncio.run(self.rekey.handle(Batch(records, 6, at_end, {INCIDENTS: 6, CALENDAR: 1}), sink))
        queues: dict[int, list[Indicator]] = {}
        for partition, value in sink.sent:
            queues.setdefault(partition, []).extend(Indicator.unpack(row) for row in orjson.loads(value))
        self.stamps += [i for rows in queues.values() for i in rows if i.kind != "idle"]
        new = []
        while queues:
            partition, rows = queues.popitem()
            result = process(self.clocks[partition], self.wards[partition], rows, CONFIG, partition=partition,
                             partitions=BY_WARD_PARTITIONS)
            new += result.changes
            for target, sent in result.outbox.items():
                queues.setdefault(target, []).extend(sent)
        self.changes += new
        return new

    def done(self) -> bool:
        return all(self.read[tp] == len(rows) for tp, rows in self.log.items())


def _first_tp(log: dict, incident_id) -> TopicPartition:
    return next(tp for tp, rows in log.items() for r in rows if orjson.loads(r.value).get("incident_id") == str(incident_id))


def _other_ward(code: str) -> str:
    return next(w for w in sorted(wards()) if ward_partition(w, BY_WARD_PARTITIONS) != ward_partition(code, BY_WARD_PARTITIONS))


def test_a_busy_ward_elsewhere_does_not_hold_a_quiet_wards_alert_back():
    """Five hate reports in Whitechapel, then a steady stream of noise in a ward another by-ward
    partition owns, on every source partition, busy until the end. Whitechapel's partition
    receives nothing after its fifth report but the stage's word on the sources' clocks."""
    rng = random.Random(5)
    hate = [report(WHITECHAPEL, "hate_incident", EVENING + timedelta(minutes=i), rng=rng) for i in range(5)]
    elsewhere = _other_ward(WHITECHAPEL)
    noise = [report(elsewhere, "noise", EVENING + timedelta(minutes=5, seconds=s), rng=rng) for s in range(0, 600, 2)]
    log = log_of(hate + noise)
    live = Live(log)
    live.step({tp: sum(orjson.loads(r.value)["category"] == "hate_incident" for r in rows) for tp, rows in log.items()})
    assert not [c for c in live.changes if c.ward == WHITECHAPEL]  # the sources' clocks are not past it yet
    raised_at = None
    for n in range(1, 60):
        new = live.step({tp: 2 for tp in log})  # the noise, a few records a poll from every source
        if any(c.ward == WHITECHAPEL for c in new):
            raised_at = n
            break
    assert raised_at is not None, "Whitechapel's alert waited for the busy stream to go idle"
    assert not live.done()  # raised while the source partitions were still busy
    change = next(c for c in live.changes if c.ward == WHITECHAPEL)
    assert change.early and change.new.rank > change.old.rank


ONE = TopicPartition(INCIDENTS, 0)


def _one_partition(events) -> dict:
    """Every event on incidents partition 0, in the order given (as one producer writes them)."""
    records = [r for rows in log_of(events).values() for r in rows]
    order = [str(e.event_id) for e in events]
    records.sort(key=lambda r: order.index(orjson.loads(r.value)["event_id"]))
    return {ONE: [type(r)(INCIDENTS, 0, n, r.key, r.value, r.headers) for n, r in enumerate(records)],
            TopicPartition(CALENDAR, 0): []}


def test_every_fact_carries_its_source_partitions_clock_just_before_it():
    rng = random.Random(9)
    at = [0, 300, 120, 600, 60]  # seconds after the evening: the third and fifth come out of order
    codes = [WHITECHAPEL, BOW_EAST, WHITECHAPEL, _other_ward(BOW_EAST), BOW_EAST]  # to several by-ward partitions
    log = _one_partition([report(w, "hate_incident", EVENING + timedelta(seconds=s), rng=rng) for s, w in zip(at, codes)])
    live = Live(log)
    live.step({ONE: 2})
    live.step({ONE: 3})  # the stage's batches split the partition: the stamps do not depend on it
    evening = int(EVENING.timestamp())
    assert sorted((i.at - evening, None if i.clock is None else i.clock - evening) for i in live.stamps) == \
        sorted([(0, None), (300, 0), (120, 300), (600, 300), (60, 600)])


def test_a_restarted_stage_takes_each_clock_up_at_the_committed_offset():
    rng = random.Random(11)
    log = _one_partition([report(WHITECHAPEL, "hate_incident", EVENING + timedelta(minutes=m), rng=rng) for m in (0, 30, 10)])
    first = Live({ONE: log[ONE][:2], TopicPartition(CALENDAR, 0): []})
    first.step({ONE: 2})
    saved = first.rekey.commit_metadata(ONE)
    asked = []

    async def committed(tps):
        asked.append(list(tps))
        return {ONE: (2, saved)}

    again = Live(log, committed=committed)
    again.read[ONE] = 2  # the restarted worker starts at the committed offset
    again.step({ONE: 1})
    assert asked == [[ONE]]
    late = again.stamps[-1]
    assert late.at == int((EVENING + timedelta(minutes=10)).timestamp())
    assert late.clock == int((EVENING + timedelta(minutes=30)).timestamp())  # as if it had never stopped

    async def elsewhere(tps):  # the group's commit is at another offset: that clock is not this one's
        return {ONE: (1, saved)}

    moved = Live(log, committed=elsewhere)
    moved.read[ONE] = 2
    moved.step({ONE: 1})
    assert moved.stamps[-1].clock is None


def test_the_live_stage_batched_any_way_publishes_what_the_offline_replay_does():
    history, event = bonfire_night(0)
    quiet = background(days=10, ward_codes=[WHITECHAPEL, BOW_EAST], seed=4)
    burst = [report(WHITECHAPEL, c, EVENING - timedelta(days=4) + timedelta(minutes=7 * i), rng=random.Random(i))
             for i, c in enumerate(["hate_incident", "community_tension_report"] * 6)]
    for events in (sorted(history, key=lambda e: e.occurred_at), sorted(quiet + burst, key=lambda e: e.occurred_at)):
        log = log_of(events)
        expected = sorted(offline(events), key=str)
        assert expected
        for seed in (1, 2, 3):
            rng = random.Random(seed)
            live = Live(log)
            while not live.done():
                live.step({tp: rng.choice([0, 1, 7, 50, 400]) for tp in log})
            live.step({})  # every source read to its end, and idle
            assert sorted((to_event(c, NAMES[c.ward]) for c in live.changes), key=str) == expected, seed
