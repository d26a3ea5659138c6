"""Route each decoded record to what it writes: one table from event type to handler.

A handler only stages rows into the batch; the repository writes a whole batch in one
transaction, and the status rules (rules.py) decide what a newly inserted fact changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.shared import events as ev


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass
class Batch:
    """Everything one transaction writes: rows from the records, and where the records end."""

    timeline: list[tuple] = field(default_factory=list)  # incident_events rows
    facts: list[ev.IncidentEvent] = field(default_factory=list)  # in log order; applied if new
    escalations: list[ev.EscalationRaised | ev.EscalationStoodDown] = field(default_factory=list)
    tension: list[ev.TensionLevelChanged] = field(default_factory=list)
    calendar: list[tuple[ev.Event, str, Position]] = field(default_factory=list)  # planned events, silences
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> next offset
    _seen: set[uuid.UUID] = field(default_factory=set)

    def advance(self, pos: Position) -> None:
        key = (pos.topic, pos.partition)
        self.offsets[key] = max(self.offsets.get(key, 0), pos.offset + 1)

    def first_time_in_batch(self, event_id: uuid.UUID) -> bool:
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        return True

    def __len__(self) -> int:
        return len(self.timeline) + len(self.tension) + len(self.calendar)


def timeline_row(event: ev.IncidentEvent, payload: str, pos: Position) -> tuple[Any, ...]:
    """A row of incident_events, in TIMELINE_COLUMNS order (the enums are str: written as their values)."""
    source = event.source
    return (
        event.event_id, event.incident_id, event.event_type, event.occurred_at, event.recorded_at,
        event.classification, event.mode, source.kind, source.id, source.agency, payload,
        pos.topic, pos.partition, pos.offset,
    )


TIMELINE_COLUMNS = (
    "event_id", "incident_id", "event_type", "occurred_at", "recorded_at", "classification", "mode",
    "source_kind", "source_id", "source_agency", "payload", "topic", "partition", "offset",
)


def incident_fact(batch: Batch, event: ev.IncidentEvent, payload: str, pos: Position) -> None:
    batch.timeline.append(timeline_row(event, payload, pos))
    batch.facts.append(event)


def escalation(batch: Batch, event: ev.EscalationRaised | ev.EscalationStoodDown, payload: str, pos: Position) -> None:
    incident_fact(batch, event, payload, pos)
    batch.escalations.append(event)


def tension_changed(batch: Batch, event: ev.TensionLevelChanged, payload: str, pos: Position) -> None:
    batch.tension.append(event)


def calendar_fact(batch: Batch, event: ev.Event, payload: str, pos: Position) -> None:
    batch.calendar.append((event, payload, pos))


Handler = Callable[[Batch, Any, str, Position], None]

HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(ev.INCIDENT_FACT_TYPES, incident_fact),
    "EscalationRaised": escalation,
    "EscalationUpdated": incident_fact,
    "EscalationStoodDown": escalation,
    "TensionLevelChanged": tension_changed,
    "PlannedEventRegistered": calendar_fact,
    "PlannedEventCancelled": calendar_fact,
    "TensionSilenced": calendar_fact,
}


def stage(batch: Batch, event: ev.Event, payload: str, pos: Position) -> None:
    """Stage one decoded record (a repeat of an event_id within the batch only advances the offset)."""
    batch.advance(pos)
    if batch.first_time_in_batch(event.event_id):
        HANDLERS[event.event_type](batch, event, payload, pos)
