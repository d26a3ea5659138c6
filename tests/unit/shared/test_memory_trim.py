"""Freed heap pages go back to the system (services/shared/runtime.py `trim_memory`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.shared import runtime

pytestmark = pytest.mark.unit

# A burst of 4 KiB objects (glibc's heap, not pymalloc's arenas), every 64th kept so the freed
# pages lie between live ones: free() cannot hand them back, malloc_trim(0) can.
BURST = """
import sys
from pathlib import Path
from services.shared.runtime import trim_memory

def rss_mb():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6

kept = []
burst = [bytes(4000) + bytes([i % 256]) for i in range(60_000)]
kept = burst[::64]
del burst
before = rss_mb()
trimmed = trim_memory()
print(before, rss_mb(), trimmed)
"""


def run_burst() -> tuple[float, float, bool]:
    out = subprocess.run([sys.executable, "-c", BURST], capture_output=True, text=True, check=True, timeout=60)
    before, after, trimmed = out.stdout.split()
    return float(before), float(after), trimmed == "True"


def test_a_freed_burst_leaves_the_resident_size_once_trimmed():
    before, after, trimmed = run_burst()
    assert trimmed
    assert before - after > 150, (before, after)  # of the burst's ~240 MB, nearly all handed back


def test_the_trimmer_starts_once_per_process():
    started = runtime.keep_memory_trimmed(every_s=3600)
    assert runtime.keep_memory_trimmed(every_s=3600) is started
    if started:
        assert runtime._trimmer is not None and runtime._trimmer.daemon
