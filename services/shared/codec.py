"""The wire format, used by every service: JSON value, key = the aggregate id, and the
envelope's `event_type`, `schema_version`, `classification` and `mode` as headers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Iterable, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from services.shared.events import SUPERSEDED, AnyEvent, DeadLetter, Event

_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)

HEADER_NAMES = ("event_type", "schema_version", "classification", "mode")

T = TypeVar("T")


class PoisonRecord(ValueError):
    """A record that can never be decoded: dead-letter it, never retry it."""


@dataclass(frozen=True, slots=True)
class Encoded:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


_HEADERS: dict[tuple, tuple[tuple[str, bytes], ...]] = {}  # a handful of combinations, built once each


def _headers(event: Event | DeadLetter) -> list[tuple[str, bytes]]:
    if isinstance(event, Event):
        values = (event.event_type, event.schema_version, event.classification, event.mode)
    else:
        values = (event.event_type, event.schema_version)
    headers = _HEADERS.get(values)
    if headers is None:
        headers = _HEADERS[values] = tuple(zip(HEADER_NAMES, (str(v).encode() for v in values)))
    return list(headers)


def encode(event: Event | DeadLetter) -> Encoded:
    # A UUID key written by orjson (canonical form) costs a quarter of str(uuid).
    key = getattr(event, event.topic_key_field, None) if isinstance(event, Event) else None
    key_bytes = orjson.dumps(key)[1:-1] if isinstance(key, uuid.UUID) else event.key().encode()
    # to_json gives model_dump_json's bytes without its decode/encode round trip.
    return Encoded(key=key_bytes, value=event.__pydantic_serializer__.to_json(event), headers=_headers(event))


def decode(value: bytes | None) -> Event:
    """Bytes from Kafka to an event; anything undecodable raises PoisonRecord with the reason."""
    return decode_as(_ADAPTER, value)


def decode_as(adapter: TypeAdapter[T], value: bytes | None) -> T:
    """Bytes from Kafka to any model, e.g. a narrow view of the few fields one service reads
    (`extra="ignore"`): far cheaper than the whole event. Undecodable: PoisonRecord naming the field."""
    if value is None:
        raise PoisonRecord("empty record value (tombstone) on an event topic")
    try:
        return adapter.validate_json(value)
    except ValidationError as exc:
        raise PoisonRecord(describe_validation_error(exc)) from None


def superseded(headers: Iterable[tuple[str, Any]] | None) -> bool:
    """A record of an older schema_version, still produced beside the current one for a
    transition (docs/contract.md): a reader of the current version skips it by its headers."""
    version = header(headers, "schema_version")
    return version is not None and version.isdigit() and (header(headers, "event_type"), int(version)) in SUPERSEDED


def header(headers: Iterable[tuple[str, Any]] | None, name: str) -> str | None:
    """The text of a record's header (`event_type`, `mode`...), or None when it is absent.
    encode() sets them on every record, so a consumer can skip what it does not read undecoded."""
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None


def describe_validation_error(exc: ValidationError) -> str:
    """Every bad field and why, in one line: `location.ward_code: unknown ward code ...`."""
    return "; ".join(f"{field}: {message}" for field, message in validation_problems(exc))


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Every bad field and why, as (dotted field path, message) pairs."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
        problems.append((loc or "(record)", err["msg"]))
    return problems
