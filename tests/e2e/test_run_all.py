"""`muster run all` on ports of its own: it plays a day, prints the summary, and Ctrl-C
leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.shared.settings import REPO_ROOT
from tests.support import free_kafka_and_pg_ports

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _processes_with(marker: str) -> list[int]:
    """Every live process whose environment names this run's MUSTER_HOME."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(proc.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


def _wait_for_line(process: subprocess.Popen, output: Path, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = output.read_text()
        if text in seen:
            return seen
        assert process.poll() is None, f"muster run all exited early:\n{seen}"
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} after {timeout}s:\n{output.read_text()}")


def test_run_all_plays_a_day_prints_the_summary_and_ctrl_c_leaves_nothing_behind(tmp_path, base_settings):
    kafka_port, pg_port = free_kafka_and_pg_ports()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "MUSTER_HOME": str(home),
        "MUSTER_CACHE_DIR": str(base_settings.cache_dir),
        "MUSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "MUSTER_PG_PORT": str(pg_port),
        "MUSTER_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/muster",
        "MUSTER_KAFKA_HEAP": "256m",
        "MUSTER_RUN_DAY_SECONDS": "8",
    }
    output = tmp_path / "run.out"
    with open(output, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "all"], cwd=REPO_ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        seen = _wait_for_line(process, output, "Ctrl-C stops everything", timeout=240)
        assert "kafka: started" in seen and "postgres: started" in seen
        assert "incidents raised:" in seen and "escalations by level:" in seen and "tension alerts by ward:" in seen
        assert "http://127.0.0.1:8001/board" in seen
        # the board with a ready development sign-in, as soon as the services are up, before the day
        assert -1 < seen.find("development sign-in") < seen.find("simulating "), seen
        assert len(_processes_with(str(home))) >= 2, "kafka and postgres run while muster runs"

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            subprocess.run([sys.executable, "-m", "services.cli", "dev", "down"], cwd=REPO_ROOT, env=env, timeout=120)
    assert "kafka: stopped" in output.read_text() and "postgres: stopped" in output.read_text()
    assert _processes_with(str(home)) == []
