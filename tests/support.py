"""Helpers shared by tests."""

from __future__ import annotations

import asyncio


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Await a condition instead of sleeping a fixed time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
