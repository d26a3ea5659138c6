"""The wire format, used by every service: JSON value, key = the aggregate id, and the
envelope's `event_type`, `schema_version`, `classification` and `mode` as headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, TypeVar

from pydantic import TypeAdapter, ValidationError

from services.shared.events import AnyEvent, DeadLetter, Event

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


def encode(event: Event | DeadLetter) -> Encoded:
    headers = [("event_type", event.event_type.encode()), ("schema_version", str(event.schema_version).encode())]
    if isinstance(event, Event):
        # StrEnum members are their values: str.encode on them skips the slow `.value` lookup.
        headers += [("classification", event.classification.encode()), ("mode", event.mode.encode())]
    # to_json gives model_dump_json's bytes without its decode/encode round trip.
    return Encoded(key=event.key().encode(), value=event.__pydantic_serializer__.to_json(event), headers=headers)


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
