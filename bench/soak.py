"""The soak (issue 17): 30 minutes at 70% of the maximum sustainable rate, faults spread over it,
judged by the independent auditor, with each process's memory over time.

    MUSTER_CACHE_DIR=/work/main/.muster/cache .venv/bin/python bench/soak.py --max-rate 200 [--minutes 30]

--max-rate is bench/pipeline.py's "max sustainable" figure (measured the same day on the same
machine); the soak runs at 70% of it. Passes when, for every service process:
- resident memory is flat after the warm-up: the mean of the last 3 minutes is less than
  10% above the mean of the 3 minutes after the warm-up (5 minutes);
- every fault recovers (consumer lag back to the floor and intake acknowledging) within 60 s;
- the auditor finds no violation.
The faults are those that leave the services' own processes running (broker kill, PostgreSQL
`immediate`, latency, cuts, slow drains, the poison storm), so each process's memory is one
continuous curve; `muster chaos --schedule full` kills and restarts them.
Writes report.txt, timeline.png (memory in its last panel) and memory.json under
<MUSTER_HOME>/soak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import orjson

from services.chaos.faults import Fault, full_schedule
from services.chaos.run import Plan, execute
from services.shared.settings import get_settings

WARMUP_S = 300.0
WINDOW_S = 180.0
GROWTH_LIMIT = 0.10
RECOVERY_LIMIT_S = 60.0


def memory(samples: list[dict], start: float, end: float) -> dict[str, dict]:
    """Per process: mean resident MB just after the warm-up and at the end, and the growth."""
    out = {}
    names = {n for s in samples for n, p in s["processes"].items() if p}
    for name in sorted(names):
        def mean(lo: float, hi: float) -> float | None:
            values = [s["processes"][name]["rss_mb"] for s in samples
                      if lo <= s["t"] <= hi and s["processes"].get(name)]
            return sum(values) / len(values) if values else None
        after = mean(start + WARMUP_S, start + WARMUP_S + WINDOW_S)
        last = mean(end - WINDOW_S, end)
        pids = {s["processes"][name]["pid"] for s in samples if s["processes"].get(name)}
        out[name] = {"after_warmup_mb": after, "end_mb": last, "pids": len(pids),
                     "growth": None if not after or last is None else (last - after) / after}
    return out


def soak_faults(storm_seconds: float) -> list[Fault]:
    return [f for f in full_schedule(storm_seconds) if f.kind not in ("kill9", "restart")]


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-rate", type=float, required=True, help="bench/pipeline.py's max sustainable rate")
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    rate = round(0.7 * args.max_rate)
    base = get_settings()
    run_dir = base.home / "soak"
    seconds = args.minutes * 60
    print(f"soak: {args.minutes:g} min at {rate} events/s (70% of {args.max_rate:g}); load average "
          f"{os.getloadavg()[0]:.1f} on 2 shared cores", flush=True)
    plan = Plan(rate=rate, schedule="soak", duration=seconds, warmup=WARMUP_S, gap=30, tail=120,
                faults=soak_faults(30.0), settle_timeout=240)
    verdict = await execute(run_dir, base, plan)
    samples = [orjson.loads(line) for line in (run_dir / "samples.jsonl").read_bytes().splitlines()]
    run = orjson.loads((run_dir / "run.json").read_bytes())
    mem = memory(samples, run["started"], samples[-1]["t"])
    (run_dir / "memory.json").write_bytes(orjson.dumps(mem, option=orjson.OPT_INDENT_2))
    print(verdict["report"])
    print(f"\n{'process':<12} {'after warm-up':>14} {'end':>10} {'growth':>8}")
    failures = []
    for name, m in mem.items():
        growth = "-" if m["growth"] is None else f"{m['growth']:+.1%}"
        note = "" if m["pids"] == 1 else f"  ({m['pids']} processes over the run)"
        print(f"{name:<12} {m['after_warmup_mb'] or 0:>11.0f} MB {m['end_mb'] or 0:>7.0f} MB {growth:>8}{note}")
        if m["growth"] is not None and m["growth"] >= GROWTH_LIMIT and name not in ("kafka", "postgres"):
            failures.append(f"{name} grew {m['growth']:.1%} after the warm-up")
    for f in verdict["faults"]:
        if f["recovery_s"] is None or f["recovery_s"] > RECOVERY_LIMIT_S:
            failures.append(f"{f['name']} recovered in {f['recovery_s']}s (limit {RECOVERY_LIMIT_S:g}s)")
    if verdict["violation_count"]:
        failures.append(f"the auditor found {verdict['violation_count']} violations")
    print("\nsoak: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    print(f"timeline: {run_dir / 'timeline.png'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
