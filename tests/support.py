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


async def read_records(settings, topic: str, partitions: int, timeout: float = 20.0) -> list:
    """Every record on the topic now (aiokafka ConsumerRecords), from the beginning to the end
    offsets, in partition order."""
    from aiokafka import TopicPartition

    from services.shared.kafka import make_consumer

    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            if loop.time() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout}s")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += batch
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
