"""The wire format, used by every service: JSON value, key = the aggregate id, and the
envelope's `event_type`, `schema_version`, `classification` and `mode` as headers."""

from __future__ import annotations

import uuid
from typing import Any, Iterable, NamedTuple, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from services.shared.events import EVENT_TYPES, STILL_PRODUCED, AnyEvent, DeadLetter, Event

_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)

HEADER_NAMES = ("event_type", "schema_version", "classification", "mode")
# On a record that repeats, in an older schema version, the fact of the record with the same
# event_id in the version this header names (docs/contract.md): who reads that version skips it.
NEWER_VERSION_HEADER = "newer_schema_version"

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


class PoisonRecord(ValueError):
    """A record that can never be decoded: dead-letter it, never retry it."""


def detached(exc: E) -> E:
    """An error kept past its `except` block (a dead letter waiting for its batch's sends): its
    class and message only. Its traceback holds the frames that raised and caught it, and the
    catching frame holds the list it is kept in: a reference cycle per poison record, with the
    record, the decoder's error and their frames, freed only by a full collection (rare under
    the processors' GC thresholds). A poison storm so kept ~25 MB of the tension worker alive
    after it had caught up, and the allocator kept the pages (the soak of 2026-12-03)."""
    exc.__context__ = exc.__cause__ = None
    return exc.with_traceback(None)


class Encoded(NamedTuple):  # a tuple: built per record, a third of a frozen dataclass's cost
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


# The current model of each event type with an older version still produced -> those older models.
_OLDER: dict[type[Event], list[type[Event]]] = {}
for _old in STILL_PRODUCED:
    _OLDER.setdefault(EVENT_TYPES[_old.model_fields["event_type"].default], []).append(_old)


def editions(event: Event) -> list[Encoded]:
    """Every record of one event: itself first, then, while a transition lasts, the same fact in
    each older schema version still produced (same event_id and key, marked `newer_schema_version`)."""
    record = encode(event)
    older = _OLDER.get(type(event))
    if not older:
        return [record]
    newer = (NEWER_VERSION_HEADER, str(event.schema_version).encode())
    out = [record]
    for model in older:
        fact = model.of(event)
        if fact is None:  # a fact the older version cannot say (a tension change only to or from watch)
            continue
        old = encode(fact)
        out.append(Encoded(old.key, old.value, [*old.headers, newer]))
    return out


def superseded(headers: Iterable[tuple[str, Any]] | None) -> bool:
    """Is this record an older-version copy of a record Muster's readers read (a version they know)?
    Skip it: its fact arrives (arrived) in the newer version, same event_id."""
    newer = header(headers, NEWER_VERSION_HEADER)
    if newer is None:
        return False
    current = EVENT_TYPES.get(header(headers, "event_type") or "")
    return current is not None and newer.isdigit() and int(newer) <= current.model_fields["schema_version"].default


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
