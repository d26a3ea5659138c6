"""Recovery per fault, the alert rules against the recorded metrics (promtool), the printed
report and the timeline picture."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import yaml

from services.chaos.audit.checks import Check


def recoveries(faults: list[dict], samples: list[dict], ledger: list[dict], floor: int) -> list[dict]:
    """Seconds from each fault's lift until every consumer's lag is at most `floor` records and
    intake has acknowledged a write again (None: not within the run)."""
    acks = sorted(e["t"] for e in ledger if e["kind"] == "ack")
    out = []
    for f in faults:
        lifted = f["lifted"]
        caught = next((s["t"] for s in samples if s["t"] >= lifted and s["kafka_lag"] is not None
                       and s["projector_lag"] is not None and sum(s["kafka_lag"].values()) <= floor
                       and s["projector_lag"] <= floor), None)
        first_ack = next((t for t in acks if t >= lifted), None)
        done = None if caught is None or first_ack is None else max(caught, first_ack)
        worst_lag = max((sum(s["kafka_lag"].values()) for s in samples
                         if s["kafka_lag"] and f["began"] <= s["t"] <= (done or lifted)), default=0)
        out.append({**f, "recovery_s": None if done is None else round(done - lifted, 1),
                    "max_lag": worst_lag})
    return out


def allowance_for(faults: list[dict], slack: float):
    """How late an escalation due at `due` may be: the slack, plus what is left of any fault
    (with its recovery) that `due` fell into."""
    def allowance(due: float) -> float:
        extra = 0.0
        for f in faults:
            end = f["lifted"] + (f["recovery_s"] if f["recovery_s"] is not None else 60.0)
            if f["began"] - slack <= due <= end:
                extra = max(extra, end - due)
        return slack + extra
    return allowance


def alert_fired(rules_dir: Path, out_dir: Path, samples: list[dict], storm: dict | None, readers: tuple[str, ...],
                interval: float) -> Check:
    """`promtool test rules` over the dead-letter counters the run recorded: MusterDeadLetters
    fires for every reader of the incidents topic by the end of the poison storm."""
    c = Check("an alert rule in deploy/prometheus fired during the poison storm (promtool)")
    if storm is None:
        c.fail("no poison storm in this run")
        return c
    promtool = shutil.which("promtool")
    if promtool is None:
        c.fail("promtool is missing: run deploy/scripts/ensure-tools.sh")
        return c
    t0 = samples[0]["t"]
    steps = int((samples[-1]["t"] - t0) / interval) + 1
    series = []
    for svc in readers:
        name = f"muster_{svc}_dead_letters_total"
        grid: list[str] = ["_"] * steps
        for s in samples:
            value = (s["metrics"].get(svc) or {}).get(name)
            if value is not None:
                grid[min(steps - 1, int((s["t"] - t0) / interval))] = repr(value)
        series.append({"series": f'{name}{{job="muster-{svc}", service="{svc}"}}', "values": " ".join(grid)})
    eval_s = int((storm["lifted"] - t0) / interval) * interval
    test = {
        "rule_files": [str((rules_dir / "rules.yml").resolve())],
        "evaluation_interval": f"{interval:g}s",
        "tests": [{
            "interval": f"{interval:g}s",
            "input_series": series,
            "promql_expr_test": [{
                "expr": 'ALERTS{alertname="MusterDeadLetters", alertstate="firing"}',
                "eval_time": f"{eval_s:g}s",
                "exp_samples": [{"labels": f'ALERTS{{alertname="MusterDeadLetters", alertstate="firing", '
                                           f'service="{svc}", severity="warn"}}', "value": 1} for svc in readers],
            }],
        }],
    }
    path = out_dir / "promtool_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    c.stats = {"test_file": str(path), "eval_time_s": eval_s}
    if result.returncode != 0:
        c.fail("promtool test rules failed: " + " | ".join((result.stdout + result.stderr).strip().splitlines()[-8:]))
    return c


def text(checks: list[Check], faults: list[dict], run: dict, floor: int) -> str:
    start = run["started"]
    lines = [f"== chaos run: {run['schedule']} schedule, {run['rate']:g} events/s, "
             f"{(run['ended'] - start) / 60:.1f} min ==", "",
             f"{'fault':<42} {'at':>7} {'held':>6} {'recovery':>9} {'max lag':>8}  note"]
    for f in faults:
        rec = "never" if f["recovery_s"] is None else f"{f['recovery_s']:.1f}s"
        lines.append(f"{f['name']:<42} {f['began'] - start:>6.0f}s {f['lifted'] - f['began']:>5.1f}s {rec:>9} "
                     f"{f['max_lag']:>8}  {f.get('note', '')}")
    lines += ["", f"(recovery: from the fault's lift until every consumer group's lag <= {floor} records "
                  "and intake acknowledges again)", ""]
    total = sum(c.count for c in checks)
    for c in checks:
        lines.append(f"[{'ok' if c.ok else 'FAIL'}] {c.name}" + (f": {c.count} violations" if c.count else ""))
        for k, v in c.stats.items():
            lines.append(f"       {k}: {v}")
        for v in c.violations:
            lines.append(f"     - {v}")
    lines += ["", f"violations: {total}"]
    return "\n".join(lines)


def timeline(path: Path, ledger: list[dict], samples: list[dict], faults: list[dict], start: float) -> None:
    """Throughput, consumer lag, intake latency and memory over the run, faults shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acks, errors = defaultdict(int), defaultdict(int)
    latency: dict[int, list[float]] = defaultdict(list)
    for e in ledger:
        second = int(e["t"] - start)
        if e["kind"] == "ack":
            acks[second] += 1
        elif e["kind"] == "request":
            latency[second // 5 * 5].append(e["seconds"] * 1000)
            if e["status"] != 200 and e["status"] != 202:
                errors[second] += 1
    fig, axes = plt.subplots(4, 1, figsize=(14, 11), sharex=True)
    xs = sorted(acks)
    axes[0].plot(xs, [acks[x] for x in xs], lw=0.8, label="acknowledged writes/s")
    xe = sorted(errors)
    axes[0].plot(xe, [errors[x] for x in xe], "r.", ms=3, label="requests not 2xx /s")
    axes[0].set_ylabel("events/s")
    t = [s["t"] - start for s in samples]
    axes[1].plot(t, [sum(s["kafka_lag"].values()) if s["kafka_lag"] is not None else float("nan") for s in samples],
                 lw=0.8, label="Kafka consumer groups (sum)")
    axes[1].plot(t, [s["projector_lag"] if s["projector_lag"] is not None else float("nan") for s in samples],
                 lw=0.8, label="projector (its offsets table)")
    axes[1].set_ylabel("lag (records)")
    axes[1].set_yscale("symlog")
    xl = sorted(latency)
    p99 = [sorted(latency[x])[int(0.99 * (len(latency[x]) - 1))] for x in xl]
    axes[2].plot(xl, p99, lw=0.8, label="intake request p99 (5 s)")
    axes[2].set_ylabel("ms")
    axes[2].set_yscale("log")
    names = sorted({n for s in samples for n, p in s["processes"].items() if p})
    for n in names:
        axes[3].plot(t, [(s["processes"].get(n) or {}).get("rss_mb", float("nan")) for s in samples], lw=0.8, label=n)
    axes[3].set_ylabel("resident MB")
    axes[3].set_xlabel("seconds since the start of the run")
    for f in faults:
        for ax in axes:
            ax.axvspan(f["began"] - start, f["lifted"] - start, color="orange", alpha=0.25)
        axes[0].annotate(f["name"], (f["began"] - start, 1), xycoords=("data", "axes fraction"), rotation=90,
                         fontsize=7, va="top")
    for ax in axes:
        ax.legend(loc="upper right", fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Muster chaos run {datetime.fromtimestamp(start):%Y-%m-%d %H:%M} (faults shaded)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
