"""What the tension processor's state costs in memory, per report and per incident (issue 17).

A synthetic week of reports (every ward of the borough, uuid4 incident ids, one in ten graded
by the police) goes through the pure core (rules.process) in batches the way one by-ward
partition's worker takes them (each batch followed by every source partition idle, so the
evaluation keeps up), then through `FirstReports.refusal` as the re-keying stage sees them. No
Kafka. Prints, measured with tracemalloc:

- the scorer's state (ward states and the partition clock) at the end of the week, and per
  report still inside the window that keeps incident ids (`ids_retention_h`);
- the bytes the scorer writes to its changelog per batch (what `TensionTables.save` puts);
- the first-report map's bytes per incident.

    .venv/bin/python bench/tension_memory.py [--days 2] [--per-second 0.5] [--batch-s 60] [--write-all]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.shared.first_reports import FirstReports
from services.shared.wards import wards as borough_wards
from services.tension.config import HOUR, load_config
from services.tension.rules import idle_marker, process
from services.tension.state import ClockState, Indicator
from services.tension.tables import changed_blobs

CATEGORIES = ("antisocial_behaviour", "noise", "criminal_damage", "drugs", "violence", "hate_incident")
START = 1_791_158_400  # 2026-10-05 00:00 UTC, a Monday
SOURCES = 6


def reports(days: float, per_second: float, seed: int = 7):
    """(event time, indicator) for a steady stream of reports over `days`, every ward alike."""
    rng = random.Random(seed)
    codes = sorted(borough_wards())
    n = int(days * 86400 * per_second)
    for i in range(n):
        at = START + int(i / per_second)
        grading = "evidenced" if rng.random() < 0.1 else None
        yield Indicator(str(uuid.UUID(int=rng.getrandbits(128), version=4)), rng.choice(codes),
                        rng.choice(CATEGORIES), grading, at, i % SOURCES, SOURCES)


def every_ward(wards, last):  # --write-all: what the scorer wrote before issue 17 (every ward, each batch)
    return {code: state.dumps() for code, state in wards.items()}


def scorer(days: float, per_second: float, batch_s: float, write_all: bool = False) -> dict:
    config = load_config()
    idle = idle_marker({s: True for s in range(SOURCES)}, SOURCES)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    clock, wards, written, batches, counted, recent = ClockState(), {}, 0, 0, 0, 0
    blobs: dict[str, bytes] = {}
    end = START + int(days * 86400)
    batch: list[Indicator] = []
    batch_end = START + batch_s
    started = time.process_time()
    for ind in reports(days, per_second):
        if ind.at >= batch_end:
            counted += process(clock, wards, batch + [idle], config).counted
            for key, blob in (every_ward if write_all else changed_blobs)(wards, blobs).items():
                written += len(blob)
                blobs[key] = blob
            written += len(clock.dumps())
            batches += 1
            batch, batch_end = [], batch_end + batch_s
        batch.append(ind)
        if ind.at >= end - config.ids_retention_h * HOUR:
            recent += 1
    cpu = time.process_time() - started
    del batch, blobs
    gc.collect()
    state = tracemalloc.get_traced_memory()[0] - base
    entries = sum(len(cell[2]) for w in wards.values() for b in w.buckets.values() for cell in b.values())
    tracemalloc.stop()
    return {"reports": counted, "batches": batches, "state_mb": state / 1e6, "entries": entries,
            "reports_in_id_window": recent, "bytes_per_kept_report": state / max(1, entries),
            "changelog_bytes_per_batch": written / max(1, batches), "cpu_s": cpu}


def first_reports(incidents: int) -> dict:
    rng = random.Random(11)
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(incidents)]
    from services.shared.events import Mode

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    reports_ = FirstReports(None)  # type: ignore[arg-type]  # never scans: no batch starts mid-partition
    for offset, incident in enumerate(ids):
        reports_.refusal(offset % SOURCES, offset // SOURCES, "IncidentReported", Mode.LIVE, incident)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"incidents": incidents, "map_mb": used / 1e6, "bytes_per_incident": used / incidents}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=2)
    parser.add_argument("--per-second", type=float, default=0.5, help="reports per second of event time")
    parser.add_argument("--batch-s", type=float, default=60.0, help="event-time seconds per batch")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--write-all", action="store_true", help="write every ward each batch (as before)")
    args = parser.parse_args()
    s = scorer(args.days, args.per_second, args.batch_s, args.write_all)
    print(f"scorer: {s['reports']:,} reports over {args.days:g} days in {s['batches']:,} batches, "
          f"{s['cpu_s']:.1f} CPU-s")
    print(f"  state at the end: {s['state_mb']:.2f} MB, {s['entries']:,} report entries kept "
          f"({s['reports_in_id_window']:,} reports in the last ids_retention_h): "
          f"{s['bytes_per_kept_report']:.0f} B per kept report")
    print(f"  changelog written: {s['changelog_bytes_per_batch'] / 1e3:.1f} kB per batch")
    f = first_reports(args.incidents)
    print(f"first reports: {f['incidents']:,} incidents, {f['map_mb']:.2f} MB, "
          f"{f['bytes_per_incident']:.0f} B per incident")


if __name__ == "__main__":
    main()
