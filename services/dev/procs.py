"""Small process helpers for the local infrastructure: pid files, ports, waiting."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


class DevError(RuntimeError):
    """A one-line, actionable problem with the local infrastructure."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return True


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while pid_alive(pid):
        time.sleep(0.05)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    hint = f" (see {log})" if log else ""
    raise DevError(f"{what} not ready after {timeout:.0f}s{hint}")


class Backoff:
    """How long a supervisor waits before starting again a process that exited by itself: `first`,
    doubling up to `most` while it keeps exiting within `steady` seconds of its start, `first`
    again after a run that lasted (Kubernetes' CrashLoopBackOff; systemd's Restart=on-failure).
    A processor's progress watchdog (exit status 3) relies on it."""

    def __init__(self, first: float = 1.0, most: float = 30.0, steady: float = 60.0) -> None:
        self.first, self.most, self.steady = first, most, steady
        self.delay: float | None = None

    def after_exit(self, ran_for: float) -> float:
        """The wait before the next start, for a run that lasted `ran_for` seconds."""
        if self.delay is None or ran_for >= self.steady:
            self.delay = self.first
        else:
            self.delay = min(self.most, self.delay * 2)
        return self.delay
