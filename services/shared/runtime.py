"""Process settings every service applies at start-up."""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable


def tune_gc(thresholds: tuple[int, int, int] = (50_000, 20, 20)) -> None:
    """Batches and requests allocate tens of thousands of short-lived objects: move what
    start-up made out of the collector's way (freeze) and collect the young generation every
    50,000 allocations instead of 700. Measured: about 2x the projector's batch rate and the
    intake's per-event validation (bench/projector.py, bench/intake.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


TRIM_EVERY_S = 30.0
_trimmer: threading.Thread | None = None


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (AttributeError, OSError):
        return None  # another C library (musl, macOS): nothing to hand back this way


def trim_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim(0)`); False where
    the C library has none. CPython frees a burst's objects (a recovery's changelog read, a
    backlog's fetch buffers and decoded facts, a poison storm's dead letters) but glibc keeps the
    pages in its arenas, one per thread that allocated, so the resident size stays at the burst's
    peak for good: the soak of 2026-12-03 saw the escalation worker step from 136 to 178 MB at a
    cut of its broker link and stay there (docs/chaos.md). bench/projector_memory.py --trim
    measured the same on the projector: +0.5 % over a run against +2.9 %."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own initial threshold, kept from moving
# Above a request's largest buffers: intake's body limit (MUSTER_INTAKE_MAX_BODY_BYTES, 4 MiB by
# default) and a produce request of a thousand-event batch (~1 MB); below glibc's own ceiling (32 MiB).
PER_REQUEST_MMAP_THRESHOLD_BYTES = 8 * 1024 * 1024


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Allocations of `threshold` bytes or more get pages of their own (mmap), handed back when
    freed; False where the C library is not glibc. glibc starts at 128 KiB but raises the
    threshold to the size of each mmapped block freed (up to 32 MiB), so after the first burst of
    large buffers (a recovery's or a backlog's fetch responses, 1 MiB a partition) the next ones
    are carved from the heap, the small objects allocated meanwhile land between them, and the
    heap can neither shrink nor be trimmed. Setting the threshold stops it moving. Measured on
    the escalation worker at a 10 s cut of its broker link at 52 events/s (a focused chaos run,
    docs/chaos.md): +14-23 MB kept after the trim, +5 MB with the threshold fixed."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    if threshold > MMAP_THRESHOLD_BYTES:
        # Fixed, the threshold no longer moves glibc's trim threshold with it (to twice itself): left
        # at 128 KiB, each free at the top of the heap hands the buffer's pages back, and the next
        # buffer faults them in again. Twice the threshold, as glibc's own adjustment sets it.
        mallopt(M_TRIM_THRESHOLD, 2 * threshold)
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1


def keep_memory_trimmed(every_s: float = TRIM_EVERY_S, mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Trim every `every_s` seconds from a daemon thread, for the life of the process (once per
    process; False where there is nothing to trim with), with the mmap threshold fixed at
    `mmap_threshold` (`fix_mmap_threshold`) so that large buffers never fragment the heap between
    trims. A trim takes a few milliseconds and holds each arena's lock only while it walks that arena.

    A process whose large buffers come at a steady rate, each request's own (intake: a batch's
    body, its produce request, its statements' documents, 0.3-1 MB each), fixes it above them
    (`PER_REQUEST_MMAP_THRESHOLD_BYTES`): at 128 KiB every one of those is an mmap, first touched
    page by page, and a munmap, which cost intake 3-5 us of its 35-40 us an event at its batch rate."""
    global _trimmer
    if _trimmer is not None:
        return True
    if _malloc_trim() is None:
        return False
    fix_mmap_threshold(mmap_threshold)

    def loop() -> None:
        while True:
            time.sleep(every_s)
            trim_memory()

    _trimmer = threading.Thread(target=loop, name="memory-trim", daemon=True)
    _trimmer.start()
    return True
