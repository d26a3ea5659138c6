"""Response models of the query API (they are the OpenAPI document's schemas)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ClassificationText = Literal["OFFICIAL", "OFFICIAL-SENSITIVE"]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class SourceOut(Model):
    kind: str | None
    id: str | None
    agency: str | None


class IncidentSummary(Model):
    incident_id: uuid.UUID
    classification: ClassificationText = Field(description="Shown on every record.")
    mode: str
    reported: bool = Field(description="False: facts arrived before the report itself.")
    category: str | None
    severity: int | None
    status: str
    ward_code: str | None
    ward_name: str | None
    lat: float | None
    lon: float | None
    address: str | None
    what3words: str | None
    description: str | None
    casualties: dict[str, Any] | None
    hazards: list[str]
    agencies_required: list[str]
    agencies_dispatched: list[str]
    agencies_on_scene: list[str]
    police_grading: str | None
    lead_incident_id: uuid.UUID | None
    occurred_at: datetime
    reported_at: datetime | None
    acknowledged_at: datetime | None
    last_event_at: datetime
    updated_at: datetime
    escalation_level: int
    major_incident_declared: bool
    version: int
    source: SourceOut


class IncidentPage(Model):
    items: list[IncidentSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class TimelineEntry(Model):
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    classification: ClassificationText
    mode: str
    source: SourceOut
    payload: dict[str, Any] = Field(description="The event as published; restricted fields removed unless cleared.")


class EscalationOut(Model):
    incident_id: uuid.UUID
    level: int
    level_name: str | None
    agencies: list[str]
    rule_id: str | None
    reason: str | None
    category: str | None
    severity: int | None
    ward_code: str | None
    classification: ClassificationText
    mode: str
    raised_at: datetime | None
    stood_down_at: datetime | None
    stood_down_reason: str | None
    final_status: str | None
    methane: dict[str, Any] | None


class IncidentDetail(Model):
    incident: IncidentSummary
    people: list[dict[str, Any]] | None = Field(description="Restricted: null when the caller is not cleared for it.")
    restricted_redacted: bool = Field(description="True when restricted fields were withheld from this caller.")
    people_erased: bool = Field(
        False, description="True when the incident's people were erased (`muster people erase`, the retention "
        "schedule): `people` is null and each timeline payload's `people` is \"[erased]\" for every reader.")
    people_erased_at: datetime | None = Field(None, description="When they were erased (shown to those cleared).")
    timeline: list[TimelineEntry] = Field(description="Every fact, ordered by occurred_at.")
    escalations: list[EscalationOut]
    linked: list[IncidentSummary] = Field(description="Its lead incident and the duplicates merged into it, as visible.")


class EscalationPage(Model):
    items: list[EscalationOut]


class TensionNow(Model):
    level: str
    previous_level: str
    score: float
    observed: float
    expected: float
    window: str
    window_start: datetime
    window_end: datetime
    changed_at: datetime


class WardOut(Model):
    code: str
    name: str
    lat: float
    lon: float
    tension: TensionNow | None = Field(description="Latest level in the requested mode; null: never changed (normal).")


class ActorOut(Model):
    kind: str
    id: str


class SilenceOut(Model):
    silence_id: uuid.UUID
    ward_code: str
    ward_name: str
    category: str
    silenced_at: datetime
    until: datetime = Field(description="It expires on its own then.")
    reason: str
    silenced_by: ActorOut
    classification: ClassificationText
    mode: str


class PlannedEventOut(Model):
    planned_event_id: uuid.UUID
    name: str
    kind: str
    wards: list[str]
    route: bool
    starts_at: datetime
    ends_at: datetime
    contentious: bool
    expected_uplift: dict[str, float]
    registered_at: datetime
    registered_by: ActorOut
    classification: ClassificationText
    mode: str


class TensionChange(Model):
    event_id: uuid.UUID
    classification: ClassificationText
    old_level: str
    new_level: str
    score: float
    observed: float
    expected: float
    window: str
    window_start: datetime
    window_end: datetime
    occurred_at: datetime
    top_contributors: list[dict[str, Any]]


class WardTension(Model):
    ward_code: str
    ward_name: str
    mode: str
    now: TensionNow | None
    history: list[TensionChange] = Field(description="Level changes, newest first.")


class Indicator(Model):
    category: str
    weighted: float
    count: int


class ReturnRow(Model):
    ward_code: str
    ward_name: str
    level: str = Field(description="Level at the end of the week.")
    level_at_start: str
    highest_level: str
    changes: int
    trend: Literal["rising", "falling", "steady"]
    peak_score: float | None
    top_indicators: list[Indicator]


class TensionReturn(Model):
    week_start: date
    week_end: date
    mode: str
    wards: list[ReturnRow]


class Count(Model):
    key: str
    count: int


class HourCount(Model):
    day_of_week: int = Field(description="1 Monday ... 7 Sunday (ISO), in Europe/London time.")
    hour: int
    count: int


class Stats(Model):
    total: int
    by_ward: list[Count]
    by_category: list[Count]
    by_hour_of_week: list[HourCount]


class ErrorBody(Model):
    error: str
    detail: str
