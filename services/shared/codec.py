"""The wire format, used by every service: JSON value, key = the aggregate id, and the
envelope's `event_type`, `schema_version`, `classification` and `mode` as headers."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from services.shared.events import AnyEvent, DeadLetter, Event

_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)

HEADER_NAMES = ("event_type", "schema_version", "classification", "mode")


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
        headers += [("classification", event.classification.value.encode()), ("mode", event.mode.value.encode())]
    return Encoded(key=event.key().encode(), value=event.model_dump_json().encode(), headers=headers)


def decode(value: bytes | None) -> Event:
    """Bytes from Kafka to an event; anything undecodable raises PoisonRecord with the reason."""
    if value is None:
        raise PoisonRecord("empty record value (tombstone) on an event topic")
    try:
        return _ADAPTER.validate_json(value)
    except ValidationError as exc:
        raise PoisonRecord(describe_validation_error(exc)) from None


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
