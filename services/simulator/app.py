"""The simulator's one wiring point: a feed, a sink from settings, and the pace to play it."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from services.simulator.feed import (
    ApiSink,
    JsonlSink,
    KafkaSink,
    Pace,
    Played,
    SimulateError,
    Sink,
    Tally,
    play,
    schedule,
)
from services.simulator.generator import FeedConfig, generate

SinkName = Literal["kafka", "api", "jsonl"]
LOAD_HOURS = 24 * 366 * 50  # a load run draws from as long a simulated period as it needs


@dataclass(frozen=True)
class Options:
    feed: FeedConfig
    sink: SinkName = "kafka"
    pace: Pace = Pace()
    events: int | None = None  # stop after this many events
    out: str = "-"  # jsonl sink
    api_url: str | None = None
    token: str | None = None
    topic: str | None = None  # default: the incidents topic of topics.yaml
    batch: int | None = None
    progress: bool = True


@dataclass
class Report:
    sink: str
    played: Played
    tally: Tally = field(default_factory=Tally)
    prepared_seconds: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        p = self.played
        out = [f"simulate: {p.sent} events, {self.tally.incidents} incidents raised, to {self.sink} "
               f"in {p.seconds:.1f}s ({p.rate:,.0f} events/s)"]
        if self.prepared_seconds:
            out.append(f"simulate: generated and encoded beforehand in {self.prepared_seconds:.1f}s "
                       f"({p.sent / self.prepared_seconds:,.0f} events/s)")
        out += [f"simulate: rejected {n}: {reason}" for reason, n in self.rejected.items()]
        return out


def make_sink(settings: Settings, options: Options) -> Sink:
    batch = {"batch_size": options.batch} if options.batch else {}
    if options.sink == "kafka":
        topic = options.topic or TopicCatalog.from_settings(settings).name("incidents")
        return KafkaSink(settings, topic, **batch)
    if options.sink == "api":
        token = options.token or (settings.simulate_token.get_secret_value() if settings.simulate_token else None)
        if not token:
            raise SimulateError("--sink api needs a bearer token: pass --token or set MUSTER_SIMULATE_TOKEN")
        return ApiSink(options.api_url or settings.simulate_api_url, token, **batch)
    return JsonlSink(options.out, **batch)


def _events(options: Options):
    events = generate(options.feed)
    return itertools.islice(events, options.events) if options.events is not None else events


async def simulate(settings: Settings, options: Options, events=None) -> Report:
    """Play the feed (or the events given) at its pace; events go out in `recorded_at` order."""
    sink = make_sink(settings, options)
    tally = Tally()
    items = schedule(tally.count(events if events is not None else _events(options)), sink, options.feed.start,
                     options.pace)
    played = await play(items, sink, rate=options.pace.rate, progress=options.progress, total=options.events)
    return Report(sink.describe(), played, tally, rejected=dict(getattr(sink, "rejected", {})))


async def load(settings: Settings, options: Options) -> Report:
    """Benchmark: make and encode N events first, then send them at the rate (or flat out);
    the rate printed is what the sink took, acknowledged, from first send to last ack."""
    if not options.events:
        raise SimulateError("--load needs --events N")
    sink = make_sink(settings, options)
    feed = replace(options.feed, hours=LOAD_HOURS)
    tally = Tally()
    began = time.monotonic()
    payloads = [(0.0, sink.prepare(e)) for e in itertools.islice(tally.count(generate(feed)), options.events)]
    prepared = time.monotonic() - began
    played = await play(payloads, sink, rate=options.pace.rate, progress=options.progress, total=len(payloads))
    return Report(sink.describe(), played, tally, prepared, dict(getattr(sink, "rejected", {})))


async def play_day(settings: Settings, start, seconds: float, seed: int, progress: bool = True) -> Report:
    """A whole simulated day with every scenario, compressed into `seconds` (what `muster run all`
    plays); lives still going on at midnight are cut there."""
    from services.simulator.scenarios import SCENARIOS

    feed = FeedConfig(start=start, hours=24, seed=seed, scenarios=tuple((name, None) for name in SCENARIOS))
    options = Options(feed=feed, pace=Pace(speedup=24 * 3600 / seconds), progress=progress)
    return await simulate(settings, options, itertools.takewhile(lambda e: e.recorded_at < feed.end, generate(feed)))
