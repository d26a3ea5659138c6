"""`muster run all`: the whole system on one machine, until Ctrl-C.

Starts (or reuses) Kafka and PostgreSQL, applies topics and migrations, runs every service
as a child process (`muster run NAME`, logs in <home>/logs/NAME.log),
plays a compressed simulated day with every scenario, prints what happened, and waits.
Ctrl-C or SIGTERM stops every child, then the infrastructure this run started (never a
broker or database someone else was already running).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import typer

from services.dev.procs import Backoff, port_open
from services.runner import SERVICES
from services.shared.startup import StartupError
from services.shared.settings import REPO_ROOT, Settings
from services.shared.watchdog import EXIT_STALLED

# Where each service answers once it is up: (settings field of its room, DESIGN.md's default port, what).
ADDRESSES: dict[str, tuple[str, int, str]] = {
    "intake": ("intake_port", 8000, "intake API        http://127.0.0.1:{port}/docs"),
    "query": ("query_port", 8001, "query API, board  http://127.0.0.1:{port}/board"),
    "escalation": ("escalation_metrics_port", 9101, "escalation        http://127.0.0.1:{port}/metrics"),
    "tension": ("tension_metrics_port", 9102, "tension           http://127.0.0.1:{port}/metrics"),
    "casework": ("casework_metrics_port", 9104, "casework          http://127.0.0.1:{port}/metrics"),
    "projector": ("projector_metrics_port", 9103, "projector         http://127.0.0.1:{port}/metrics"),
}
READY_TIMEOUT = 60.0
WHY = {EXIT_STALLED: " (its progress watchdog: a partition stalled)"}  # exit statuses given on purpose
SETTLE_TIMEOUT = 30.0


def port_of(settings: Settings, service: str) -> int:
    field, default, _ = ADDRESSES[service]
    return int(getattr(settings, field, default))


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if `muster run all` itself is killed, so nothing is left behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.monotonic)
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float | None = None  # exited by itself: when it is started again


class Stop(Exception):
    """SIGTERM: leave as Ctrl-C does."""


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logs = settings.home / "logs"
        self.children: dict[str, Child] = {}
        self.started_infra: list[str] = []

    def say(self, line: str) -> None:
        typer.echo(line)

    # --- the whole run ---------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
        try:
            self.infrastructure()
            self.migrate()
            self.start_services()
            self.wait_ready()
            self.board_sign_in()
            self.day()
            self.say("Muster is running. Ctrl-C stops everything.")
            while True:
                self.report_deaths()
                time.sleep(0.5)
        except (KeyboardInterrupt, Stop):
            self.say("\nstopping...")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop_everything()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _on_sigterm(self, *_) -> None:
        raise Stop()

    # --- steps -----------------------------------------------------------------------------
    def infrastructure(self) -> None:
        from services.dev import DevError, LocalKafka, LocalPostgres

        postgres, kafka = LocalPostgres(self.settings), LocalKafka(self.settings)
        try:
            kafka.preflight()
            postgres.preflight()
            for name, part in (("postgres", postgres), ("kafka", kafka)):  # as `muster dev up`, one at a time
                if part.pid() is None:
                    self.started_infra.append(name)  # before up(): a half-started one is stopped too
                self.say(part.up())
        except DevError as exc:
            raise StartupError(str(exc)) from None

        from services.dev import apply_topics_and_acls

        for line in apply_topics_and_acls(self.settings):
            self.say(line)

    def migrate(self) -> None:
        result = subprocess.run([sys.executable, "-m", "services.cli", "db", "migrate"], cwd=REPO_ROOT,
                                capture_output=True, text=True)
        if result.returncode != 0:
            tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
            raise StartupError(f"`muster db migrate` failed: {tail}")
        self.say("migrations: applied")

    def start_services(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            child = self.start_child(name)
            self.say(f"{name}: started (pid {child.process.pid}), log {child.log}")

    def start_child(self, name: str) -> Child:
        log = self.logs / f"{name}.log"
        process = self.spawn(name, log)
        before = self.children.get(name)
        child = Child(name, process, log, backoff=before.backoff if before else Backoff())
        self.children[name] = child
        return child

    def spawn(self, name: str, log: Path) -> subprocess.Popen:
        """`muster run NAME` in its own session, its output appended to `log`."""
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run", name], cwd=REPO_ROOT, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = set(self.children)
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                if self.children[name].process.poll() is not None:
                    waiting.discard(name)
                elif port_open("127.0.0.1", port_of(self.settings, name)):
                    self.say(f"{name}: ready on :{port_of(self.settings, name)}")
                    waiting.discard(name)
            self.report_deaths()
            time.sleep(0.2)
        for name in sorted(waiting):
            self.say(f"{name}: not answering on :{port_of(self.settings, name)} yet; going on (see its log)")

    def board_sign_in(self) -> None:
        if "query" in self.running():
            from services.query.board.signin import sign_in_line

            self.say(sign_in_line(self.settings))

    def day(self) -> None:
        from services.simulator.app import play_day
        from services.simulator.summary import read_outcome

        start = datetime.combine(datetime.now(timezone.utc).date() - timedelta(days=1), datetime.min.time(),
                                 tzinfo=timezone.utc)
        seed = int(time.time()) % 1_000_000
        seconds = self.settings.run_day_seconds
        self.say(f"simulating {start:%A %d %B %Y} (seed {seed}) in {seconds:.0f}s, every scenario on...")
        since_ms = int(time.time() * 1000)
        report = asyncio.run(play_day(self.settings, start, seconds, seed, progress=sys.stderr.isatty()))
        self.report_deaths()
        ids = report.tally.incident_ids

        async def outcome():
            return await read_outcome(self.settings, report.tally.incidents, ids, since_ms)

        result = asyncio.run(outcome())
        if {"escalation", "tension"} & set(self.running()):
            deadline = time.monotonic() + SETTLE_TIMEOUT  # let the processors catch up with the day
            while time.monotonic() < deadline:
                time.sleep(3)
                latest = asyncio.run(outcome())
                if latest.lines() == result.lines():
                    break
                result = latest
        self.say(f"\n== the simulated day: {report.played.sent} events from {report.tally.incidents} incidents ==")
        for line in result.lines():
            self.say(line)
        self.say("where to look next:")
        for name, (_, _, what) in ADDRESSES.items():
            note = "" if name in self.running() else "  (not running)"
            self.say("  " + what.format(port=port_of(self.settings, name)) + note)
        self.say(f"  logs              {self.logs}/<service>.log")
        self.say(f"  replay the day    muster simulate --seed {seed} --start {start.isoformat()} --scenario all "
                 f"--speedup {24 * 3600 / seconds:.0f}")

    # --- children --------------------------------------------------------------------------
    def running(self) -> list[str]:
        return [name for name, child in self.children.items() if child.process.poll() is None]

    def report_deaths(self) -> None:
        """A child that exited by itself is said once, and started again after its backoff (a
        processor's progress watchdog exits with status 3 for exactly this)."""
        now = time.monotonic()
        for child in list(self.children.values()):
            code = child.process.poll()
            if code is None:
                continue
            if child.restart_at is None:
                child.restart_at = now + child.backoff.after_exit(now - child.started)
                self.say(f"{child.name}: exited with code {code}{WHY.get(code, '')}; restarting in "
                         f"{child.restart_at - now:.0f}s; see {child.log}")
            elif now >= child.restart_at:
                restarted = self.start_child(child.name)
                self.say(f"{child.name}: restarted (pid {restarted.process.pid})")

    def stop_everything(self) -> None:
        for child in self.children.values():
            _stop_group(child.process)
            self.say(f"{child.name}: stopped")
        from services.dev import LocalKafka, LocalPostgres

        for name, infra in (("kafka", LocalKafka), ("postgres", LocalPostgres)):
            if name in self.started_infra:
                self.say(infra(self.settings).down())
            else:
                self.say(f"{name}: left running (this run did not start it)")


def _stop_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM to the child's whole process group, then SIGKILL if it lingers; reaped on return."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything the service left behind in its group
        except ProcessLookupError:
            pass
        return
