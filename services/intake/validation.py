"""From a request body and the caller to an event: pure rules, no I/O.

The body is the event's JSON as in `schemas/`, except that intake fills what a client may
omit: `event_id` (from the Idempotency-Key when given, else random), `recorded_at`
(always now: it is when intake accepted the event), `schema_version`, `incident_id` (new
for a new incident, the path's for a fact about one) and `source` (from the token).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from services.intake import permissions
from services.shared.auth import Principal
from services.shared.codec import validation_problems
from services.shared.events import (
    CALENDAR_FACTS,
    INCIDENT_FACT_TYPES,
    Event,
    IncidentEvent,
    IncidentReported,
    derived_event_id,
)

FACT_TYPES: dict[str, type[IncidentEvent]] = INCIDENT_FACT_TYPES
CALENDAR_TYPES: dict[str, type[Event]] = {cls.model_fields["event_type"].default: cls for cls in CALENDAR_FACTS}
APPENDABLE = tuple(name for name in FACT_TYPES if name != "IncidentReported")


class Rejection(Exception):
    """Why a request (or one batch item) is refused: HTTP status, a metric reason, every problem."""

    def __init__(self, status: int, reason: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(status, reason, problems)
        self.status = status
        self.reason = reason
        self.problems = problems

    @property
    def detail(self) -> str:
        return "; ".join(f"{f}: {m}" for f, m in self.problems)

    def prefixed(self, prefix: str) -> "Rejection":
        return Rejection(self.status, self.reason, tuple((f"{prefix}.{f}", m) for f, m in self.problems))


def invalid(field_path: str, message: str) -> Rejection:
    return Rejection(422, "validation", ((field_path, message),))


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid("(body)", f"not valid JSON: {exc}") from None


def event_id_for_key(principal: Principal, idempotency_key: str, *parts: object) -> uuid.UUID:
    """An Idempotency-Key maps to one event_id per caller (and batch position)."""
    return derived_event_id("idempotency-key", principal.subject, idempotency_key, *parts)


def incident_id_for(event_id: uuid.UUID) -> uuid.UUID:
    """A new incident's id follows from its report's event_id, so a retry names the same incident."""
    return derived_event_id("incident", event_id)


def new_incident(
    body: Any, principal: Principal, *, now: datetime, idempotency_key: str | None = None
) -> IncidentReported:
    """POST /v1/incidents: an IncidentReported; intake assigns the incident_id."""
    data = _object(body)
    if "incident_id" in data:
        raise invalid("incident_id", "must be omitted: intake assigns a new incident's id")
    data.setdefault("event_type", "IncidentReported")
    if data["event_type"] != "IncidentReported":
        raise invalid("event_type", "must be IncidentReported; post other facts to /v1/incidents/{incident_id}/events")
    _fill_event_id(data, principal, idempotency_key)
    try:
        data["incident_id"] = incident_id_for(uuid.UUID(str(data["event_id"])))
    except ValueError:
        raise invalid("event_id", "must be a UUID") from None
    return _build(data, principal, now)  # type: ignore[return-value]


def appended_fact(
    body: Any, principal: Principal, incident_id: uuid.UUID, *, now: datetime, idempotency_key: str | None = None
) -> IncidentEvent:
    """POST /v1/incidents/{incident_id}/events: any incident fact except IncidentReported."""
    data = _object(body)
    if "incident_id" in data and str(data["incident_id"]) != str(incident_id):
        raise invalid("incident_id", "differs from the incident_id in the path; omit it or send the same one")
    data["incident_id"] = incident_id
    if data.get("event_type") == "IncidentReported":
        raise invalid("event_type", "a new incident is raised with POST /v1/incidents")
    _fill_event_id(data, principal, idempotency_key)
    return _build(data, principal, now, allowed=APPENDABLE)


def batch_item(
    item: Any, principal: Principal, *, now: datetime, idempotency_key: str | None = None, index: int = 0
) -> IncidentEvent:
    """One item of POST /v1/events:batch: a full incident fact, incident_id included."""
    data = _object(item)
    if "incident_id" not in data:
        raise invalid("incident_id", "Field required")
    _fill_event_id(data, principal, idempotency_key, index)
    return _build(data, principal, now)


def calendar_fact(
    body: Any, principal: Principal, *, now: datetime, idempotency_key: str | None = None
) -> Event:
    """POST /v1/tension/calendar: a planned event (registered, updated, cancelled) or a silence.
    A new planned event or silence without its id gets one, from the event_id (a retry names
    the same one); `occurred_at` defaults to now (when it was registered)."""
    data = _object(body)
    _fill_event_id(data, principal, idempotency_key)
    data.setdefault("occurred_at", now)
    kind = data.get("event_type")
    if kind in ("PlannedEventRegistered", "TensionSilenced"):
        field = "planned_event_id" if kind == "PlannedEventRegistered" else "silence_id"
        try:
            data.setdefault(field, derived_event_id(field, uuid.UUID(str(data["event_id"]))))
        except ValueError:
            raise invalid("event_id", "must be a UUID") from None
    return _build(data, principal, now, allowed=tuple(CALENDAR_TYPES), types=CALENDAR_TYPES)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("(body)", "must be a JSON object (the event)")
    return dict(body)


def _fill_event_id(data: dict[str, Any], principal: Principal, idempotency_key: str | None, *parts: object) -> None:
    if data.get("event_id") is None:
        data["event_id"] = event_id_for_key(principal, idempotency_key, *parts) if idempotency_key else uuid.uuid4()


def _build(
    data: dict[str, Any], principal: Principal, now: datetime, allowed: tuple[str, ...] = tuple(FACT_TYPES),
    types: dict[str, type[Event]] = FACT_TYPES,
) -> IncidentEvent:
    event_type = data.get("event_type")
    if event_type is None:
        raise invalid("event_type", "Field required")
    if event_type not in allowed:
        raise invalid("event_type", f"must be one of {', '.join(allowed)}")
    reason = permissions.forbidden_reason(principal, event_type)
    if reason is not None:
        raise Rejection(403, "forbidden", (("event_type", reason),))
    source = data.get("source")
    if source is None:
        data["source"] = {
            "kind": permissions.source_kind(principal),
            "id": principal.subject,
            "agency": principal.agency,
        }
    elif isinstance(source, dict) and source.get("agency") not in (None, principal.agency.value):
        raise Rejection(403, "forbidden", (("source.agency", "differs from the agency of your token"),))
    elif isinstance(source, dict) and source.get("agency") is None:
        data["source"] = {**source, "agency": principal.agency}
    data["recorded_at"] = now
    try:
        return types[event_type].model_validate(data)
    except ValidationError as exc:
        raise Rejection(422, "validation", tuple(validation_problems(exc))) from None
