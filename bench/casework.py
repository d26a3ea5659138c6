"""Benchmark: a four-week borough history replayed through one casework worker, beside the
raw aiokafka consume rate of the same topic as the ceiling.

The history is what `muster simulate` produces for four weeks (reports and every follow-up
fact), with casework in it: reports of anti-social behaviour, noise, drugs and raves carry
a complainant key (a pool of residents, some complaining again and again) and a UPRN (a
pool of properties, a few of them problem premises), and a third of them are also recorded
by a second agency as a ComplaintRecorded.

    MUSTER_HOME=... .venv/bin/python bench/casework.py [--intensity 7]

Target: the escalation processor's throughput or better (>= 5,000 events/s through one
worker, bench/escalation.py). Uses its own topic prefix on the running broker, deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tension import committed_all, drop_run_topics, published, raw_consume_rate
from services.casework.app import build
from services.shared import events as ev
from services.shared.codec import encode
from services.shared.kafka import apply_topics, make_admin, make_producer
from services.shared.logging import configure_logging
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from services.simulator.generator import FeedConfig, generate
from tests.tension_history import START

TARGET_RATE = 5_000  # the escalation processor's target, events/s through one worker
CASEWORK = {ev.Category.ANTISOCIAL_BEHAVIOUR, ev.Category.NOISE, ev.Category.DRUGS, ev.Category.ILLEGAL_RAVE}


def history(intensity: float, residents: int, properties: int, seed: int = 7) -> list:
    rng = random.Random(seed)
    keys = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(residents)]
    uprns = [str(100_000_000_000 + i) for i in range(properties)]
    out = []
    feed = FeedConfig(start=START, hours=28 * 24, intensity=intensity, scenarios=(("whitechapel-hate", None),))
    for event in generate(feed):
        if isinstance(event, ev.IncidentReported) and event.category in CASEWORK:
            key = keys[min(int(rng.paretovariate(1.2)) - 1, residents - 1)]  # a few residents complain a lot
            uprn = uprns[min(int(rng.paretovariate(1.1)) - 1, properties - 1)]
            event = event.model_copy(update={"complainant_key": key, "uprn": uprn})
            out.append(event)
            if rng.random() < 1 / 3:
                out.append(ev.ComplaintRecorded(
                    incident_id=event.incident_id, occurred_at=event.recorded_at, recorded_at=event.recorded_at,
                    source=ev.Source(kind=ev.SourceKind.POLICE, id="pc-1", agency=ev.Agency.POLICE),
                    complainant_key=key, behaviour_at=event.occurred_at, category=event.category,
                    agency=ev.Agency.POLICE, uprn=uprn,
                ))
            continue
        out.append(event)
    return [encode(e) for e in out]


async def replay(base: Settings, encoded: list) -> float:
    settings = base.model_copy(update={"topic_prefix": f"bench-{uuid.uuid4().hex[:8]}.", "home": Path(tempfile.mkdtemp())})
    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    await apply_topics(admin, catalog)
    try:
        producer = make_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
        await producer.start()
        for e in encoded:
            await producer.send(catalog.name("incidents"), e.value, key=e.key, headers=e.headers)
        await producer.flush()
        await producer.stop()
        raw = await raw_consume_rate(settings, catalog.name("incidents"), len(encoded))
        print(f"  ceiling: raw aiokafka consume {raw:,.0f} events/s (no decoding, same run)")

        casework = build(settings)
        group = casework.app.conf.id
        inputs = [(casework.rekey_group, [catalog.name("incidents")]), (group, [casework.by_case.get_topic_name()])]
        t0, cpu0 = time.perf_counter(), time.process_time()
        await casework.app.start()
        try:
            while not all([await committed_all(admin, settings, g, topics) for g, topics in inputs]):
                await asyncio.sleep(0.5)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        finally:
            await casework.app.stop()
        alerts = await published(settings, catalog.name("casework.alerts"))
        rate = len(encoded) / elapsed
        print(f"  casework worker: {len(encoded):,} events in {elapsed:.1f}s (start-up and commit included) = "
              f"{rate:,.0f} events/s ({rate / raw:.0%} of the ceiling); {cpu:.1f} CPU-s = "
              f"{len(encoded) / cpu:,.0f} events per CPU-second; {alerts} alerts published")
        print(f"  target >= {TARGET_RATE:,} events/s (the escalation processor's): "
              f"{'met' if rate >= TARGET_RATE else 'NOT met'}")
        return rate
    finally:
        await drop_run_topics(admin, settings)


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    t0 = time.perf_counter()
    encoded = history(args.intensity, args.residents, args.properties)
    kinds = Counter(dict(e.headers)["event_type"].decode() for e in encoded)
    print(f"four weeks: {len(encoded):,} events ({kinds['IncidentReported']:,} reports, "
          f"{kinds['ComplaintRecorded']:,} complaints recorded by a second agency), "
          f"generated in {time.perf_counter() - t0:.1f}s")
    await replay(Settings(), encoded)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intensity", type=float, default=7.0, help="simulator intensity (7 -> ~240,000 events)")
    parser.add_argument("--residents", type=int, default=3000)
    parser.add_argument("--properties", type=int, default=5000)
    asyncio.run(main(parser.parse_args()))
