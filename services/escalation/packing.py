"""Packed records (pure): many incident facts of one source partition in one internal record.

The pre-stage (packer.py) reads the incidents topic in batches and writes, per source
partition, records of `[[offset, "<key>", "<the fact's JSON>"], ...]` to the same partition number
of the internal packed topic. The incident agent unpacks one record into many facts, so
faust's per-event machinery is paid once per pack, not once per fact. The fact's own JSON
travels unchanged (as a string), so a fact the agent cannot read is dead-lettered with its
original key and value and its source offset (headers are not carried: the value has them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from services.shared.codec import PoisonRecord

PACK_BYTES = 256 * 1024  # a pack's approximate size limit: well under the producer's 1 MB request limit


def pack(records: Iterable[Any], limit: int = PACK_BYTES) -> tuple[list[bytes], list[tuple[Any, PoisonRecord]]]:
    """The packs of one source partition's records, in order; records that are not text into `dead`.

    A pack closes once its facts reach `limit` bytes; a fact larger than that travels alone."""
    chunks: list[list[tuple[int, str | None, str]]] = []
    rows: list[tuple[int, str | None, str]] = []
    size = 0
    dead: list[tuple[Any, PoisonRecord]] = []
    for record in records:
        if record.value is None:
            dead.append((record, PoisonRecord("empty record value (tombstone) on an event topic")))
            continue
        try:
            key = record.key.decode("utf-8") if record.key is not None else None
            value = record.value.decode("utf-8")
        except UnicodeDecodeError as exc:
            dead.append((record, PoisonRecord(f"key or value: not UTF-8 text ({exc.reason} at byte {exc.start})")))
            continue
        weight = 2 * len(record.value) + 64  # JSON string escaping can double a fact's size
        if rows and size + weight > limit:
            chunks.append(rows)
            rows, size = [], 0
        rows.append((record.offset, key, value))
        size += weight
    if rows:
        chunks.append(rows)
    return [orjson.dumps(chunk) for chunk in chunks], dead


def unpack(value: bytes | None) -> list[tuple[int, str | None, str]]:
    """A pack's (source offset, key, fact JSON) rows; a record that is no pack raises PoisonRecord."""
    try:
        rows = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise PoisonRecord(f"packed record: not JSON ({exc})") from None
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == 3 and isinstance(r[0], int) and isinstance(r[1], str | None)
        and isinstance(r[2], str) for r in rows
    ):
        raise PoisonRecord("packed record: expected [[offset, key, fact JSON], ...]")
    return [(offset, key, text) for offset, key, text in rows]
