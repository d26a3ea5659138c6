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


# After a large block is freed, glibc raises its mmap threshold to that block's size: the next
# large buffers come from the heap. mallinfo2's hblkhd is what is mmapped now.
THRESHOLD = """
import ctypes, sys
from services.shared.runtime import fix_mmap_threshold

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
fixed = fix_mmap_threshold() if sys.argv[1] == "fixed" else False
big = bytearray(8 << 20)
del big  # freed: glibc's threshold moves to 8 MiB unless fixed
before = libc.mallinfo2().hblkhd
buffers = [bytearray(512 << 10) for _ in range(8)]  # a fetch's worth of 512 KiB buffers
print(fixed, (libc.mallinfo2().hblkhd - before) >> 10)
"""


def mmapped_kib(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", THRESHOLD, mode], capture_output=True, text=True, check=True,
                         timeout=60)
    fixed, kib = out.stdout.split()
    return fixed == "True", int(kib)


def test_large_buffers_get_pages_of_their_own_after_a_larger_one_was_freed():
    fixed, kib = mmapped_kib("fixed")
    assert fixed
    assert kib >= 8 * 512, kib  # each buffer mmapped: handed back whole when freed
    _, unfixed = mmapped_kib("default")
    assert unfixed < 512, unfixed  # glibc's moving threshold: all carved from the heap (what the fix stops)


# A request's buffers, one after another (intake: each batch's body, produce request, documents): with the
# threshold fixed at glibc's 128 KiB each is an mmap whose pages are faulted in anew; fixed above them
# (PER_REQUEST_MMAP_THRESHOLD_BYTES, with the trim threshold raised alongside) they reuse the heap's.
REUSE = """
import resource, sys
from services.shared import runtime

threshold = {"low": runtime.MMAP_THRESHOLD_BYTES, "per_request": runtime.PER_REQUEST_MMAP_THRESHOLD_BYTES}[sys.argv[1]]
assert runtime.fix_mmap_threshold(threshold)
for _ in range(3):  # warm: the heap grows to hold one buffer
    buffer = bytearray(1 << 20); del buffer
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    buffer = bytearray(1 << 20)  # zero-filled: every page touched
    del buffer
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def faults_per_buffer(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True, timeout=60)
    return float(out.stdout)


def test_a_per_request_threshold_reuses_the_heap_for_each_requests_buffers():
    if runtime._malloc_trim() is None:
        pytest.fail("not glibc: this machine's C library has no mallopt thresholds to test")
    assert faults_per_buffer("low") >= 200  # 256 pages of 4 KiB mapped and faulted in each time
    assert faults_per_buffer("per_request") < 10  # the same pages each time
