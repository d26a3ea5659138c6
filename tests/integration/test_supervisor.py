"""The supervisor of `muster run all` reports a child that dies, starts it again after its
backoff, and stops every child it started."""

from __future__ import annotations

import subprocess
import sys
import time

from services.dev.procs import Backoff, pid_alive
from services.supervisor import Child, Supervisor


class Recording(Supervisor):
    def __init__(self, settings):
        super().__init__(settings)
        self.said = []

    def say(self, line):
        self.said.append(line)

    def spawn(self, name, log):  # what `muster run NAME` would be: a child that stays up
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def _child(tmp_path, name, code):
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    return Child(name, process, tmp_path / f"{name}.log")


def test_a_child_that_dies_is_reported_once_and_started_again_after_its_backoff(tmp_path, base_settings):
    supervisor = Recording(base_settings)
    supervisor.children["tension"] = child = _child(tmp_path, "tension", "raise SystemExit(3)")
    child.process.wait()
    supervisor.report_deaths()
    supervisor.report_deaths()  # said once; not yet due
    assert supervisor.said == [f"tension: exited with code 3 (its progress watchdog: a partition stalled); "
                               f"restarting in 1s; see {tmp_path / 'tension.log'}"]
    assert supervisor.children["tension"] is child
    child.restart_at = time.monotonic()  # its second has passed
    supervisor.report_deaths()
    again = supervisor.children["tension"]
    try:
        assert again is not child and again.process.poll() is None
        assert supervisor.said[-1] == f"tension: restarted (pid {again.process.pid})"
        assert again.backoff is child.backoff  # a child that keeps dying waits longer each time
    finally:
        supervisor.stop_everything()


def test_the_backoff_doubles_while_a_process_keeps_dying_and_starts_over_after_a_run_that_lasted():
    backoff = Backoff(first=1, most=8, steady=60)
    assert [backoff.after_exit(2) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert backoff.after_exit(61) == 1


def test_stopping_ends_every_child_and_what_it_spawned_and_leaves_infrastructure_it_did_not_start(tmp_path,
                                                                                                 base_settings):
    supervisor = Recording(base_settings)
    spawner = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
               "time.sleep(60)']); print(p.pid, flush=True); time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", spawner], start_new_session=True, stdout=subprocess.PIPE,
                               text=True)
    grandchild = int(process.stdout.readline())
    supervisor.children["query"] = Child("query", process, tmp_path / "query.log")
    supervisor.stop_everything()
    assert process.returncode is not None
    deadline = time.monotonic() + 5  # the signal is delivered; the grandchild's exit may take a moment
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(grandchild)
    assert supervisor.said == ["query: stopped", "kafka: left running (this run did not start it)",
                               "postgres: left running (this run did not start it)"]
