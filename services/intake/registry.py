"""Intake's incident registry: what intake has accepted about each incident. Pure, no I/O.

A row per incident in `intake.incidents` (migrations/0002_registry.sql): who reported it
(agency, source, token subject), the agencies required (with the reporting agency, the
owners), its mode, classification, whether it is terminal, its lead incident if linked.
Every fact after the first report is checked against it (the status store may lag; this
does not): the row changes in the same transaction as the idempotency record of the fact
that changed it (repository.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NamedTuple

from services.shared import events as ev


class IncidentRecord(NamedTuple):  # a tuple: one is built per new report, a batch's thousand at once
    incident_id: uuid.UUID
    reporter: str  # the reporting token's subject
    reporting_agency: str
    source_kind: str
    source_id: str
    agencies_required: tuple[str, ...]
    mode: str
    classification: str
    terminal: bool = False
    lead_incident_id: uuid.UUID | None = None

    @property
    def owners(self) -> frozenset[str]:
        return frozenset({self.reporting_agency, *self.agencies_required})


@dataclass(frozen=True, slots=True)
class Change:
    """What one accepted fact changes in the registry (applied in log order)."""

    incident_id: uuid.UUID
    add_agencies: tuple[str, ...] = ()
    remove_agencies: tuple[str, ...] = ()
    classification: str | None = None  # raised to this (never lowered)
    terminal: bool = False
    lead_incident_id: uuid.UUID | None = None

    def as_row(self) -> tuple:
        return (self.incident_id, list(self.add_agencies), list(self.remove_agencies), self.classification,
                self.terminal, self.lead_incident_id)


def record_of(report: ev.IncidentReported, reporter: str) -> IncidentRecord:
    # The enums are StrEnums: each member is its value as a str (equal, same hash, written as
    # text), so no `.value` lookup per field; dict.fromkeys keeps the first of a repeated agency.
    source = report.source
    required = report.agencies_required
    return IncidentRecord(
        report.incident_id, reporter, source.agency or "", source.kind, source.id,
        tuple(dict.fromkeys(required)) if required else (), report.mode, report.classification,
    )


def change_of(event: ev.IncidentEvent) -> Change | None:
    """The registry change a fact makes; None when it changes nothing intake checks."""
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    terminal, lead = False, None
    kind = event.event_type  # a string compare: isinstance on pydantic models costs more, per batch item
    if kind == "IncidentUpdated":
        add = tuple(a.value for a in event.agencies_required or ())
        remove = tuple(a.value for a in event.agencies_removed or ())
    elif kind == "IncidentStatusChanged":
        terminal = event.status.terminal
    elif kind == "IncidentLinked":
        lead = event.lead_incident_id
    sensitive = event.classification is ev.Classification.OFFICIAL_SENSITIVE
    if not (add or remove or terminal or lead or sensitive):
        return None
    return Change(event.incident_id, add, remove, event.classification.value if sensitive else None, terminal, lead)


def applied(record: IncidentRecord, change: Change) -> IncidentRecord:
    """The record after a change (the same fold the SQL in repository.py does)."""
    agencies = ev.agencies_union(record.agencies_required, change.add_agencies)
    return record._replace(
        agencies_required=tuple(a.value for a in agencies if a.value not in change.remove_agencies),
        classification=ev.Classification.highest(
            ev.Classification(record.classification),
            ev.Classification(change.classification) if change.classification else None,
        ).value,
        terminal=record.terminal or change.terminal,
        lead_incident_id=record.lead_incident_id or change.lead_incident_id,  # the first link stands
    )
