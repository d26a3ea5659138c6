"""The independent auditor of a chaos run.

It reads only the broker and the database, through the published contract (topics.yaml,
schemas/*.json, the status store's documented tables), and the harness's own records (the
ledger of what intake answered, the poison sent, the faults and the samples). It never
imports the services' code: tests/unit/chaos/test_auditor_imports.py fails if it does.

`muster chaos` runs it once its load has drained, while the run's cluster is still up (it
reads the live broker and database, so a finished run cannot be re-audited after the cluster
is gone; its report.txt and report.json stay).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml

from services.chaos.audit import checks, report
from services.chaos.audit.contract import Contract
from services.chaos.audit.sources import read_topics, run_replay, snapshot

# The tension service's own offline replay, as a command (never imported): the alerts it would
# raise for the log, one wire-form JSON object a line (docs/tension.md, docs/chaos.md).
TENSION_REPLAY = (sys.executable, "-m", "services.cli", "tension", "replay", "--all")
REQUEST_BOUND_S = 12.0  # a request taking longer has hung (intake's publish timeout is 3 s in a run)
DEADLINE_SLACK_S = 6.0
WATCHDOG_EXIT = 3  # a processor stopped by its progress watchdog (docs/ops.md, "The progress watchdog")


@dataclass(frozen=True)
class Inputs:
    run_dir: Path
    kafka_bootstrap: str
    database_url: str
    rules_file: Path  # the escalation rules the run used (data, for the deadlines)
    topics_file: Path
    schemas_dir: Path
    rules_dir: Path  # deploy/prometheus
    topic_prefix: str = ""
    # aiokafka connection options beside the bootstrap servers (security_protocol, sasl_*): the harness
    # gives an administrator's credentials on a secured broker, since the auditor reads every topic.
    kafka_options: dict = field(default_factory=dict)
    # The MUSTER_KAFKA_* variables of the replay command (its protocol and credentials), from the harness.
    kafka_env: dict = field(default_factory=lambda: {"MUSTER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"})
    sample_interval: float = 2.0
    replay_command: tuple[str, ...] = TENSION_REPLAY


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


class Audit:
    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.contract = Contract(inputs.topics_file, inputs.schemas_dir, inputs.topic_prefix)

    async def snapshot_store(self) -> dict:
        return await snapshot(self.inputs.database_url)

    async def tension_replay(self) -> list[bytes] | str:
        """`muster tension replay --all` against the run's broker, as a separate process."""
        i = self.inputs
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
        env.update({"MUSTER_KAFKA_BOOTSTRAP": i.kafka_bootstrap, "MUSTER_TOPIC_PREFIX": i.topic_prefix,
                    "MUSTER_TOPICS_FILE": str(i.topics_file),
                    "MUSTER_HOME": str(i.run_dir / "replay-home"), "MUSTER_LOG_FORMAT": "json", **i.kafka_env})
        return await run_replay(i.replay_command, env, cwd=str(i.topics_file.parent))

    async def run(self, live: dict, rebuilt: dict | None) -> dict:
        i, contract = self.inputs, self.contract
        run = orjson.loads((i.run_dir / "run.json").read_bytes())
        ledger = _lines(i.run_dir / "ledger.jsonl")
        samples = _lines(i.run_dir / "samples.jsonl")
        poison = _lines(i.run_dir / "poison.jsonl")
        faults_raw = orjson.loads((i.run_dir / "faults.json").read_bytes())
        floor = max(20, int(run["rate"]))
        faults = report.recoveries(faults_raw, samples, ledger, floor)
        names = {spec.name: spec.id for spec in contract.topics.values()}
        raw = await read_topics(i.kafka_bootstrap, {s.name: s.partitions for s in contract.topics.values()},
                              **i.kafka_options)
        records = {names[name]: recs for name, recs in raw.items()}
        log = checks.Log.read(contract, records)
        replayed = await self.tension_replay()
        rules = yaml.safe_load(i.rules_file.read_text())["acknowledgement"]
        deadline_for = {int(k): float(v) for k, v in rules["deadline_seconds"].items()}
        storm = next((f for f in faults if f["kind"] == "poison_storm"), None)
        readers = contract.readers_of("incidents")
        found = [
            checks.acknowledged_writes(log, ledger, live),
            checks.store_is_the_fold(log, live),
            checks.rebuild_equals_live(live, rebuilt),
            checks.escalated_once(log, contract),
            checks.deadlines(log, contract, deadline_for, int(rules["climb_limit"]),
                             report.allowance_for(faults, DEADLINE_SLACK_S), until=run["ended"] - DEADLINE_SLACK_S),
            checks.modes_kept_apart(log, contract, records),
            checks.tension_replayed(contract, records, replayed),
            checks.http_outcomes(ledger, REQUEST_BOUND_S),
            checks.poison_dead_lettered(log, contract, records, poison, ledger, live,
                                        (storm["began"], storm["lifted"]) if storm else None),
            report.alert_fired(i.rules_dir, i.run_dir, samples, storm, readers, i.sample_interval),
        ]
        never = [f for f in faults if f["recovery_s"] is None]
        recovered = checks.Check("every fault recovered within the run")
        for f in never:
            recovered.fail(f"{f['name']} (lifted at +{f['lifted'] - run['started']:.0f}s) never recovered")
        found.append(recovered)
        alive = checks.Check("every service process stayed up (but for the faults that stopped it)")
        for name, code in run.get("exited", {}).items():
            alive.fail(f"{name} exited by itself with code {code} (see home/logs/{name}.log)")
        watchdog = []
        for name, exits in run.get("restarts", {}).items():
            for e in exits:
                at = f"+{e['at'] - run['started']:.0f}s"
                if e["code"] == WATCHDOG_EXIT:  # a stall seen and ended as designed: said, not a violation
                    watchdog.append(f"{name} at {at}")
                else:
                    alive.fail(f"{name} exited by itself with code {e['code']} at {at}, restarted by its "
                               f"supervisor (see home/logs/{name}.log)")
        if watchdog:
            alive.stats["stopped by their progress watchdog and restarted"] = ", ".join(watchdog)
        found.append(alive)
        text = report.text(found, faults, run, floor)
        (i.run_dir / "report.txt").write_text(text + "\n")
        report.timeline(i.run_dir / "timeline.png", ledger, samples, faults, run["started"])
        verdict = {
            "violations": [f"{c.name}: {v}" for c in found for v in c.violations],
            "violation_count": sum(c.count for c in found),
            "checks": [{"name": c.name, "ok": c.ok, "count": c.count, "stats": c.stats, "violations": c.violations}
                       for c in found],
            "faults": faults, "floor": floor, "report": text,
        }
        (i.run_dir / "report.json").write_bytes(orjson.dumps(verdict, default=str, option=orjson.OPT_INDENT_2))
        return verdict


__all__ = ["Audit", "Inputs"]
