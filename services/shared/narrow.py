"""Narrow views of incident facts: only the fields one processor reads, validated exactly
as the full events validate them (the same field types, services/shared/events.py), every
other field ignored. Decoding a whole event (free text, people) cost a processor more than
its own work. Escalation (services/escalation/facts.py) and tension
(services/tension/facts.py) build their views on this base and read them with `reader`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from services.shared.codec import decode_as
from services.shared.events import INCIDENT_FACT_TYPES, Mode


class Narrow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class NarrowFact(Narrow):
    """What every incident fact has that a processor reads."""

    incident_id: uuid.UUID
    occurred_at: AwareDatetime
    mode: Mode = Mode.LIVE


def event_type_of(model: type[NarrowFact]) -> str:
    (kind,) = model.model_fields["event_type"].annotation.__args__  # a Literal of one incident fact type
    return kind


def reader(*models: type[NarrowFact]):  # -> Callable[[bytes | str | None], NarrowFact]
    """One record's JSON to the view of its event type (a discriminated union of `models`,
    each an incident fact type of events.py's registry); PoisonRecord naming the field otherwise."""
    unknown = {event_type_of(m) for m in models} - set(INCIDENT_FACT_TYPES)
    if unknown:
        raise TypeError(f"narrow views of types that are not incident facts: {sorted(unknown)}")
    adapter: TypeAdapter = TypeAdapter(Annotated[Union[models], Field(discriminator="event_type")])

    def read(value: bytes | str | None) -> NarrowFact:
        return decode_as(adapter, value)

    return read
