"""Kafka clients built from settings, and topic administration from topics.yaml."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import TopicPartition

from services.shared.settings import Settings
from services.shared.topics import TopicCatalog, TopicSpec


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's `Utils.murmur2`, aiokafka's default partitioner),
    the same hash as `aiokafka.partitioner.murmur2`, about 3x faster: the 4-byte words are
    unpacked in one call instead of byte by byte. The producer of a batch partitions with it."""
    length = len(data)
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length // 4}I", data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: list[int]) -> int:
    """The partition aiokafka's (and Kafka's) default partitioner gives a keyed record."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


def keyed_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's DefaultPartitioner with `murmur2` (same partitions: a keyed record by its key's
    hash over all partitions, an unkeyed one at random among the available), for a producer's
    `partitioner=`: aiokafka's own murmur2 reads the key byte by byte."""
    if key is None:
        return random.choice(available or all_partitions)
    return partition_for(key, all_partitions)


def murmur2_many(keys: list[bytes]) -> list[int]:
    """`murmur2` of many keys at once: the keys of one length are hashed together, a column of
    their 4-byte words per step (numpy's uint32 arithmetic wraps as the masks do), about 80x
    faster than one by one for a batch's thousand incident ids (36 bytes each); a length that
    only one key has is hashed alone."""
    by_length: dict[int, list[int]] = {}
    for n, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(n)
    out = [0] * len(keys)
    m = np.uint32(_M)
    for length, members in by_length.items():
        if len(members) == 1 or length < 4:
            for n in members:
                out[n] = murmur2(keys[n])
            continue
        words = length // 4
        data = np.frombuffer(b"".join(keys[n] for n in members), dtype=np.uint8).reshape(len(members), length)
        h = np.full(len(members), 0x9747B28C ^ length, dtype=np.uint32)
        if words:
            columns = data[:, : words * 4].copy().view("<u4")
            for j in range(words):
                k = columns[:, j] * m
                k ^= k >> np.uint32(24)
                k *= m
                h *= m
                h ^= k
        tail = words * 4
        extra = length % 4
        if extra >= 3:
            h ^= data[:, tail + 2].astype(np.uint32) << np.uint32(16)
        if extra >= 2:
            h ^= data[:, tail + 1].astype(np.uint32) << np.uint32(8)
        if extra >= 1:
            h ^= data[:, tail].astype(np.uint32)
            h *= m
        h ^= h >> np.uint32(13)
        h *= m
        h ^= h >> np.uint32(15)
        for n, value in zip(members, h.tolist()):
            out[n] = value
    return out


def partitions_for(keys: list[bytes], partitions: list[int]) -> list[int]:
    """`partition_for` of many keys (a batch's records), hashed together."""
    count = len(partitions)
    return [partitions[(h & 0x7FFFFFFF) % count] for h in murmur2_many(keys)]


# Record batches up to 256 KiB (aiokafka's default is 16 KiB), well below the broker's default
# message.max.bytes (1 MiB). aiokafka keeps one open batch per partition and a send to a full
# one waits until the sender has taken it (one request in flight per broker), so the batch size
# is a partition's throughput per round trip: with 16 KiB a poison storm's dead letters and a
# processor's changelog writes after a broker restart crawled (issue 17, docs/chaos.md).
RECORD_BATCH_BYTES = 256 * 1024


def make_producer(settings: Settings, **overrides) -> AIOKafkaProducer:
    """A durable producer: acks=all, idempotent, so a 2xx/ack means the write is safe."""
    options = {
        **settings.kafka_client_options(),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "max_batch_size": RECORD_BATCH_BYTES,
        "request_timeout_ms": 10_000,
        **overrides,
    }
    return AIOKafkaProducer(**options)


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **overrides) -> AIOKafkaConsumer:
    options = {
        **settings.kafka_client_options(),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **options)


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=15_000)


async def topic_partitions(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the topics as the cluster has them now, in order (none for a topic
    that does not exist)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(TopicPartition(d["topic"], p["partition"]) for d in described if not d.get("error_code")
                  for p in d["partitions"])


# --- topics apply / diff -------------------------------------------------------------------


@dataclass
class TopicDrift:
    """What differs between topics.yaml and the cluster, topic by topic."""

    missing: list[str] = field(default_factory=list)
    partitions: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (actual, declared)
    configs: dict[str, dict[str, tuple[str | None, str]]] = field(default_factory=dict)  # name -> key -> (actual, declared)
    fewer_partitions_declared: dict[str, tuple[int, int]] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.missing or self.partitions or self.configs)

    def lines(self) -> list[str]:
        out = [f"missing: {name}" for name in self.missing]
        out += [f"partitions: {n} has {a}, declared {d}" for n, (a, d) in self.partitions.items()]
        for n, diffs in self.configs.items():
            out += [f"config: {n} {k}={a!r}, declared {d!r}" for k, (a, d) in diffs.items()]
        out += [
            f"cannot shrink: {n} has {a} partitions, declared {d} (Kafka never reduces partitions)"
            for n, (a, d) in self.fewer_partitions_declared.items()
        ]
        return out


async def committed_metadata(settings: Settings, group: str, tps: Iterable[TopicPartition]) -> dict[TopicPartition, tuple[int, str]]:
    """The group's committed (offset, metadata) on each of these partitions that has one (the
    admin's OffsetFetch: the consumer's own `committed` drops the metadata)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group, partitions=list(tps))
    finally:
        await admin.close()
    return {tp: (meta.offset, meta.metadata or "") for tp, meta in found.items() if meta.offset >= 0}


async def topic_drift(admin: AIOKafkaAdminClient, catalog: TopicCatalog, only: Iterable[str] | None = None) -> TopicDrift:
    """`only`: topic ids to compare (default every topic)."""
    drift = TopicDrift()
    existing = set(await admin.list_topics())
    present: list[tuple[str, TopicSpec]] = []
    wanted = None if only is None else set(only)
    for spec in catalog:
        if wanted is not None and spec.id not in wanted:
            continue
        name = catalog.name_of(spec)
        if name not in existing:
            drift.missing.append(name)
        else:
            present.append((name, spec))
    if not present:
        return drift
    described = await admin.describe_topics([name for name, _ in present])
    partition_counts = {d["topic"]: len(d["partitions"]) for d in described}
    actual_configs = await _describe_configs(admin, [name for name, _ in present])
    for name, spec in present:
        have = partition_counts.get(name, 0)
        if have < spec.partitions:
            drift.partitions[name] = (have, spec.partitions)
        elif have > spec.partitions:
            drift.fewer_partitions_declared[name] = (have, spec.partitions)
        diffs = {
            key: (actual_configs[name].get(key), value)
            for key, value in catalog.configs(spec).items()
            if actual_configs[name].get(key) != value
        }
        if diffs:
            drift.configs[name] = diffs
    return drift


async def _describe_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    result: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            error_code, _msg, _rtype, rname, entries = resource[:5]
            if error_code:
                raise RuntimeError(f"describe_configs {rname}: error {error_code}")
            result[rname] = {entry[0]: entry[1] for entry in entries}
    return result


async def apply_topics(admin: AIOKafkaAdminClient, catalog: TopicCatalog, only: Iterable[str] | None = None) -> list[str]:
    """Create missing topics, raise partition counts and set configs (`only`: these topic ids).
    Returns what changed."""
    drift = await topic_drift(admin, catalog, only)
    changes: list[str] = []
    specs = {catalog.name_of(s): s for s in catalog}
    if drift.missing:
        new = [
            NewTopic(
                name=name,
                num_partitions=specs[name].partitions,
                replication_factor=catalog.replication_factor(specs[name]),
                topic_configs=catalog.configs(specs[name]),
            )
            for name in drift.missing
        ]
        response = await admin.create_topics(new, timeout_ms=30_000)
        _raise_for_errors(response, "create_topics")
        changes += [f"created {name} ({specs[name].partitions} partitions)" for name in drift.missing]
        await _wait_for_metadata(admin, {name: specs[name].partitions for name in drift.missing})
    if drift.partitions:
        response = await admin.create_partitions(
            {name: NewPartitions(total_count=declared) for name, (_, declared) in drift.partitions.items()},
            timeout_ms=30_000,
        )
        _raise_for_errors(response, "create_partitions")
        changes += [f"partitions {n}: {a} -> {d}" for n, (a, d) in drift.partitions.items()]
        await _wait_for_metadata(admin, {n: d for n, (_, d) in drift.partitions.items()})
    if drift.configs:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, configs=catalog.configs(specs[name]))
            for name in drift.configs
        ]
        for response in await admin.alter_configs(resources):
            for resource in response.resources:
                if resource[0]:
                    raise RuntimeError(f"alter_configs {resource[3]}: error {resource[0]} {resource[1]}")
        for n, diffs in drift.configs.items():
            changes += [f"config {n}: {k} {a!r} -> {d!r}" for k, (a, d) in diffs.items()]
    return changes


async def _wait_for_metadata(admin: AIOKafkaAdminClient, expected: dict[str, int], timeout: float = 30.0) -> None:
    """Return once the cluster's metadata shows every topic with its partitions and leaders."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        described = await admin.describe_topics(list(expected))
        ready = {
            d["topic"]
            for d in described
            if not d.get("error_code")
            and len(d["partitions"]) >= expected[d["topic"]]
            and all(p.get("leader", -1) >= 0 for p in d["partitions"])
        }
        if ready >= set(expected):
            return
        if loop.time() > deadline:
            raise RuntimeError(f"topics not ready after {timeout}s: {sorted(set(expected) - ready)}")
        await asyncio.sleep(0.1)


def _raise_for_errors(response, what: str) -> None:
    for entry in getattr(response, "topic_errors", []) or getattr(response, "topic_results", []):
        name, code = entry[0], entry[1]
        if code and code != 36:  # 36 TOPIC_ALREADY_EXISTS: a concurrent apply got there first
            message = entry[2] if len(entry) > 2 else ""
            raise RuntimeError(f"{what} {name}: error {code} {message}")


async def read_log(settings: Settings, topics: Iterable[str]) -> dict[TopicPartition, list]:
    """Every record on the topics right now (up to the end offsets of now), from the beginning,
    per partition in offset order, as aiokafka's ConsumerRecords (no partition left out, even
    an empty one)."""
    partitions = await topic_partitions(settings, topics)
    if not partitions:  # no such topics (yet): nothing on them
        return {}
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: dict[TopicPartition, list] = {tp: [] for tp in partitions}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                out[tp].extend(r for r in records if r.offset < ends[tp])
        return out
    finally:
        await consumer.stop()


async def read_events(settings: Settings, topics: Iterable[str], parse=None) -> list:
    """Every record on the topics right now, from the beginning, in partition order, parsed
    (`codec.decode` unless given; a PoisonRecord is skipped): for the read-only reports (tension
    return, exercise debrief) and tests."""
    from services.shared.codec import PoisonRecord, decode, superseded

    parse = parse or decode
    out = []
    for records in (await read_log(settings, topics)).values():
        for record in records:
            if superseded(record.headers):  # an older-version copy of a fact read in its newer version
                continue
            try:
                out.append(parse(record.value))
            except PoisonRecord:
                continue
    return out
