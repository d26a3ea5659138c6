"""Checks shared by the projector's load tests: the store against the plain fold."""

from __future__ import annotations

import dataclasses
import json

import asyncpg
from aiokafka import TopicPartition

from services.shared.kafka import topic_partitions
from services.projector.rules import COLUMNS, fold
from services.shared.kafka import make_consumer

_JSON = ("casualties", "people")


def _normal(row: dict) -> dict:
    return {k: (json.loads(v) if k in _JSON and v is not None else v) for k, v in row.items()}


async def assert_store_is_the_fold(dsn: str, events: list) -> None:
    """Every event in the timeline exactly once; every incident's row equals the fold of its events."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = [r[0] for r in await conn.fetch("select event_id from incident_events")]
        rows = {r["incident_id"]: _normal(dict(r)) for r in await conn.fetch(f"select {', '.join(COLUMNS)} from incidents")}
    finally:
        await conn.close()
    expected_ids = {e.event_id for e in events}
    assert len(ids) == len(set(ids)) == len(expected_ids), "an event is missing or doubled in the timeline"
    assert set(ids) == expected_ids
    expected = {i: _normal(dataclasses.asdict(s)) for i, s in fold(events).items()}
    assert rows.keys() == expected.keys()
    wrong = [i for i in expected if rows[i] != expected[i]]
    assert not wrong, f"{len(wrong)} incidents differ from the fold, e.g. {rows[wrong[0]]} != {expected[wrong[0]]}"


async def end_offsets(settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(settings, topics)
        return {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def caught_up(dsn: str, group: str, ends: dict[tuple[str, int], int]) -> bool:
    """The stored offsets reach the end of every partition."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        rows = await conn.fetch("select topic, partition, next_offset from projector_offsets where consumer_group = $1", group)
    finally:
        await conn.close()
    stored = {(r[0], r[1]): r[2] for r in rows}
    return all(stored.get(k, 0) >= v for k, v in ends.items() if v > 0)


__all__ = ["assert_store_is_the_fold", "end_offsets", "caught_up", "TopicPartition"]
