"""Helpers shared by tests."""

from __future__ import annotations

import asyncio
import socket


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing holds right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_kafka_and_pg_ports() -> tuple[int, int]:
    """A Kafka port whose neighbour (the controller) is free too, and a PostgreSQL port, all below
    the kernel's ephemeral range: a busy machine's client sockets hold ports inside it."""
    from services.chaos.cluster import Ports

    ports = Ports()
    return ports.pair(2), ports.one()
