"""`muster chaos`: the whole pipeline of its own, under load, with faults on a schedule, then
the independent auditor's verdict (services/chaos/audit), its report and its timeline.

Steps: a cluster of its own (cluster.py) under `<run dir>/home`; topics and migrations; the
five services; load through intake (load.py) at `rate` events/s; after a warm-up, each fault
of the schedule (faults.py) with a gap between; the load stops; the harness waits until
every consumer has caught up and the last acknowledgement deadlines have fallen due;
the auditor takes the status store, the harness rebuilds it (`muster projector rebuild`) and
the auditor takes it again; then the auditor checks everything against Kafka, PostgreSQL and
the ledger, writes report.txt / report.json / timeline.png, and the cluster is stopped.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

from services.chaos.cluster import Cluster
from services.shared import ids
from services.chaos.faults import SCHEDULES, Fault, Injector
from services.chaos.load import Driver, Ledger
from services.chaos.monitor import Monitor
from services.shared.auth import Role, mint_token
from services.shared.events import Agency
from services.shared.settings import REPO_ROOT, Settings

CLIMB_LIMIT = 3
RETENTION_SECONDS = 60  # escalation: finished incidents are released a minute on


@dataclass
class Plan:
    rate: float = 100.0
    schedule: str = "full"
    warmup: float = 20.0
    gap: float = 15.0
    tail: float = 10.0  # load after the last fault
    storm_seconds: float = 30.0
    storm_rate: float = 2000.0
    settle_timeout: float = 180.0
    faults: list[Fault] | None = None  # given: instead of the named schedule
    extra_env: dict[str, str] | None = None
    duration: float | None = None  # soak: faults spread over this long
    deadline_seconds: float = 20.0  # acknowledgement deadline of severity 4 and 5 in the run's rules


def write_rules(path: Path, deadline_seconds: float) -> Path:
    """The shipped rules with short acknowledgement deadlines, so deadlines fall due during a run."""
    rules = yaml.safe_load((REPO_ROOT / "services" / "escalation" / "rules.yaml").read_text())
    rules["version"] = "chaos-short-deadlines"
    rules["acknowledgement"] = {"deadline_seconds": {5: deadline_seconds, 4: deadline_seconds},
                                "climb_limit": CLIMB_LIMIT}
    path.write_text(yaml.safe_dump(rules))
    return path


def say(line: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {line}", flush=True)


async def _wait_caught_up(monitor: Monitor, timeout: float, floor: int = 0) -> bool:
    """Until a sample shows every consumer group and the projector with no lag."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(monitor.interval)
        s = monitor.samples[-1] if monitor.samples else None
        if s and s["kafka_lag"] is not None and s["projector_lag"] is not None \
                and sum(s["kafka_lag"].values()) <= floor and s["projector_lag"] <= floor:
            return True
    return False


async def _supervise(cluster: Cluster) -> None:
    """The deployment's restart policy, for as long as the run lasts: a service that exits by
    itself (a processor's progress watchdog, a crash) is started again after its backoff."""
    while True:
        for svc in cluster.services.values():
            if (said := svc.tend()) is not None:
                say(said)
        await asyncio.sleep(0.5)


async def execute(run_dir: Path, base: Settings, plan: Plan) -> dict:
    """The run; returns the auditor's verdict (its report.json)."""
    from services.chaos.audit import Audit, Inputs

    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    rules = write_rules(run_dir / "rules.yaml", plan.deadline_seconds)
    env = {"MUSTER_ESCALATION_RULES_FILE": str(rules), "MUSTER_ESCALATION_TICK_SECONDS": "0.5",
           "MUSTER_ESCALATION_CLOSED_RETENTION_SECONDS": str(RETENTION_SECONDS),
           "MUSTER_INTAKE_PUBLISH_TIMEOUT_S": "3", **(plan.extra_env or {})}
    cluster = Cluster(run_dir / "home", base, env)
    faults = plan.faults or SCHEDULES[plan.schedule](plan.storm_seconds)
    ledger = Ledger(run_dir / "ledger.jsonl")
    monitor = Monitor(cluster, run_dir / "samples.jsonl")
    injector = Injector(cluster, run_dir, storm_rate=plan.storm_rate)
    started = time.time()
    supervisor: asyncio.Task | None = None
    try:
        say(f"cluster under {cluster.home}: kafka {cluster.settings.kafka_bootstrap}, postgres :{cluster.pg_port}, "
            f"toxiproxy :{cluster.toxiproxy_port}")
        await asyncio.to_thread(cluster.start_infrastructure)
        await asyncio.to_thread(cluster.prepare)
        await asyncio.to_thread(cluster.start_services)
        await asyncio.to_thread(cluster.wait_ready)
        say("every service is up; load starts")
        supervisor = asyncio.create_task(_supervise(cluster))
        await monitor.start()
        token = mint_token(cluster.settings, subject="chaos-harness", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL,
                           ttl_s=cluster.settings.jwt_max_lifetime_s)  # the longest intake accepts
        driver = Driver(f"http://127.0.0.1:{cluster.service_ports['intake']}", token, ledger, plan.rate,
                        ids=ids.from_settings(cluster.settings))
        load = asyncio.create_task(driver.run(plan.duration or 24 * 3600.0))
        await asyncio.sleep(plan.warmup)
        spacing = plan.gap if plan.duration is None else \
            max(plan.gap, (plan.duration - plan.warmup - plan.tail) / max(1, len(faults)))
        began = time.monotonic()
        for n, fault in enumerate(faults):
            if plan.duration is not None:  # a soak spreads the faults over its whole length
                await asyncio.sleep(max(0.0, began + n * spacing - time.monotonic()))
            say(f"fault: {fault.name} for {fault.hold:.0f}s")
            await injector.run(fault)
            if plan.duration is None:
                await asyncio.sleep(plan.gap)
        if plan.duration is not None:
            await asyncio.sleep(max(0.0, started + plan.duration - time.time()))
        else:
            await asyncio.sleep(plan.tail)
        driver.stop()
        await load
        ledger.flush()
        say(f"load done: {driver.sent} sent, {driver.acked} acknowledged; waiting for every consumer to catch up")
        caught_up = await _wait_caught_up(monitor, plan.settle_timeout)
        await asyncio.sleep(CLIMB_LIMIT * plan.deadline_seconds + 5)  # the last reports' deadlines fall due
        caught_up = caught_up and await _wait_caught_up(monitor, plan.settle_timeout)
        audit = Audit(Inputs(run_dir=run_dir, kafka_bootstrap=cluster.settings.kafka_bootstrap,
                             database_url=cluster.settings.database_url.get_secret_value(),
                             rules_file=rules, topics_file=REPO_ROOT / "topics.yaml",
                             schemas_dir=REPO_ROOT / "schemas", rules_dir=REPO_ROOT / "deploy" / "prometheus",
                             kafka_options=cluster.kafka_options(), kafka_env=cluster.kafka_env()))
        live = await audit.snapshot_store()
        say("rebuilding the status store from the log (muster projector rebuild)")
        try:
            await asyncio.to_thread(cluster.cli, "projector", "rebuild", "--no-progress")
            rebuilt = await audit.snapshot_store()
        except Exception as exc:  # noqa: BLE001 - the auditor reports it
            rebuilt = {"error": str(exc)}
        await monitor.stop()
        supervisor.cancel()
        (run_dir / "faults.json").write_bytes(orjson.dumps([f.record() for f in injector.faults]))
        (run_dir / "run.json").write_bytes(orjson.dumps({
            "started": started, "ended": time.time(), "rate": plan.rate, "schedule": plan.schedule,
            "caught_up": caught_up, "deadline_seconds": plan.deadline_seconds, "climb_limit": CLIMB_LIMIT,
            "pids": {n: s.pids for n, s in cluster.services.items()},
            "exited": {n: s.proc.returncode for n, s in cluster.services.items() if not s.running},
            "restarts": {n: s.restarts for n, s in cluster.services.items() if s.restarts},
        }))
        verdict = await audit.run(live, rebuilt)
        say(f"auditor: {len(verdict['violations'])} violations; report {run_dir / 'report.txt'}")
        return verdict
    finally:
        if supervisor is not None:
            supervisor.cancel()
        ledger.close()
        await monitor.stop()
        await asyncio.to_thread(cluster.stop)
