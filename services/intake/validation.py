"""From a request body and the caller to an event: pure rules, no I/O.

The body is the event's JSON as in `schemas/`, except that intake fills what a client may
omit: `event_id` (from the Idempotency-Key when given, else random), `recorded_at`
(always now: it is when intake accepted the event), `schema_version`, `incident_id` (new
for a new incident, the path's for a fact about one) and `source` (from the token).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from services.intake import permissions
from services.shared.ids import DerivedIds
from services.shared.auth import Principal
from services.shared.codec import validation_problems
from services.shared.events import (
    CALENDAR_FACTS,
    INCIDENT_FACT_TYPES,
    Event,
    IncidentEvent,
    IncidentReported,
    Source,
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


CONTROL_MESSAGE = "control characters are not allowed (only newline and tab)"


def parse_json(body: bytes, *, walk: bool = True) -> Any:
    """The body as JSON; 422 naming the first text with a control character (`walk=False`: the
    caller walks the parts itself, a batch's items each on its own: `no_control`)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid("(body)", f"not valid JSON: {exc}") from None
    if walk and may_hold_control(body):  # JSON can only carry a control character escaped: most bodies skip the walk
        no_control(data)
    return data


def no_control(value: Any) -> None:
    """422 naming the first text (or key) of `value` holding a control character other than newline and tab."""
    bad = control_character_at(value)
    if bad is not None:
        raise invalid(bad, CONTROL_MESSAGE)


# A C0 control character inside a JSON string is always escaped (\u0000, \b, \f, \r...);
# DEL and the C1 controls (U+0080-U+009F) may also come raw (UTF-8 C2 80-9F).
_ESCAPE = re.compile(rb"\\[ubfr]")
_C1 = re.compile(rb"\xc2[\x80-\x9f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def may_hold_control(body: bytes) -> bool:
    """Whether a JSON body may carry a control character other than newline and tab (then its
    texts are walked); False only when it cannot. Single-byte searches first (memchr), the
    patterns only where their first byte occurs: one regex with alternatives scanned a batch's
    300 kB at every position (1 ms a batch)."""
    return ((b"\\" in body and _ESCAPE.search(body) is not None) or b"\x7f" in body
            or (b"\xc2" in body and _C1.search(body) is not None))


def control_character_at(value: Any, path: str = "") -> str | None:
    """The path of the first text (or key) holding a control character other than newline and
    tab, e.g. "events.3.location.address"; None when there is none. A walk with a stack of its
    own, in document order: a body nested as deep as the JSON parser allows (1,024) is no
    RecursionError (a 500; red-team probe, 2026-12-04)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _CONTROL.search(value):
                return path or "(body)"
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                here = f"{path}.{key}" if path else str(key)
                if _CONTROL.search(key):
                    children.append((key, here))  # the key itself, at its place in the order
                children.append((item, here))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(item, f"{path}.{n}" if path else str(n)) for n, item in enumerate(value)]))
    return None


def payload_digest(body: Any, *context: object) -> bytes:
    """What makes two requests "the same payload" for idempotency: the body (without the
    event_id and recorded_at intake fills) and the request's context (the path's incident), hashed."""
    if isinstance(body, dict) and ("event_id" in body or "recorded_at" in body):
        body = body.copy()  # cheaper than a comprehension over every key; the keys are sorted anyway
        body.pop("event_id", None)
        body.pop("recorded_at", None)
    text = orjson.dumps([body, [str(c) for c in context]], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(text, digest_size=16).digest()


def new_incident(
    body: Any, principal: Principal, *, now: datetime, ids: DerivedIds, idempotency_key: str | None = None
) -> IncidentReported:
    """POST /v1/incidents: an IncidentReported; intake assigns the incident_id."""
    data = _object(body)
    if "incident_id" in data:
        raise invalid("incident_id", "must be omitted: intake assigns a new incident's id")
    data.setdefault("event_type", "IncidentReported")
    if data["event_type"] != "IncidentReported":
        raise invalid("event_type", "must be IncidentReported; post other facts to /v1/incidents/{incident_id}/events")
    _fill_event_id(data, principal, ids, idempotency_key)
    try:
        data["incident_id"] = ids.incident_id_for(uuid.UUID(str(data["event_id"])))
    except ValueError:
        raise invalid("event_id", "must be a UUID") from None
    return _build(data, principal, now)  # type: ignore[return-value]


def appended_fact(
    body: Any, principal: Principal, incident_id: uuid.UUID, *, now: datetime, ids: DerivedIds,
    idempotency_key: str | None = None,
) -> IncidentEvent:
    """POST /v1/incidents/{incident_id}/events: any incident fact except IncidentReported."""
    data = _object(body)
    if "incident_id" in data and _as_uuid(data["incident_id"]) != incident_id:  # any form of the path's id
        raise invalid("incident_id", "differs from the incident_id in the path; omit it or send the same one")
    data["incident_id"] = incident_id
    if data.get("event_type") == "IncidentReported":
        raise invalid("event_type", "a new incident is raised with POST /v1/incidents")
    _fill_event_id(data, principal, ids, idempotency_key)
    return _build(data, principal, now, allowed=APPENDABLE)


def batch_item(
    item: Any, principal: Principal, *, now: datetime, ids: DerivedIds, idempotency_key: str | None = None,
    index: int = 0,
) -> IncidentEvent:
    """One item of POST /v1/events:batch: a full incident fact, incident_id included."""
    data = _object(item)
    if "incident_id" not in data:
        raise invalid("incident_id", "Field required")
    _fill_event_id(data, principal, ids, idempotency_key, index)
    return _build(data, principal, now)


def calendar_fact(
    body: Any, principal: Principal, *, now: datetime, ids: DerivedIds, idempotency_key: str | None = None
) -> Event:
    """POST /v1/tension/calendar: a planned event (registered, updated, cancelled) or a silence.
    A new planned event or silence without its id gets one, from the event_id (a retry names
    the same one); `occurred_at` defaults to now (when it was registered)."""
    data = _object(body)
    _fill_event_id(data, principal, ids, idempotency_key)
    data.setdefault("occurred_at", now)
    kind = data.get("event_type")
    if kind in ("PlannedEventRegistered", "TensionSilenced"):
        field = "planned_event_id" if kind == "PlannedEventRegistered" else "silence_id"
        try:
            data.setdefault(field, ids.item_id_for(field, uuid.UUID(str(data["event_id"]))))
        except ValueError:
            raise invalid("event_id", "must be a UUID") from None
    return _build(data, principal, now, allowed=tuple(CALENDAR_TYPES), types=CALENDAR_TYPES)


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("(body)", "must be a JSON object (the event)")
    return dict(body)


def _fill_event_id(data: dict[str, Any], principal: Principal, ids: DerivedIds, idempotency_key: str | None,
                   *parts: object) -> None:
    """An event_id the body left out: from the caller's Idempotency-Key (keyed: services/shared/ids.py), else a new one."""
    if data.get("event_id") is None:
        data["event_id"] = (ids.event_id_for_key(principal.subject, idempotency_key, *parts) if idempotency_key
                            else uuid.uuid4())


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
    _caller_is_the_actor(data, event_type, principal)
    if event_type == "IncidentReported" and data.get("people") and not permissions.may_report_people(principal):
        raise Rejection(403, "forbidden", (("people", "only the control room, admins and the operational roles "
                                                      "(responder, safeguarding) may name people in a report"),))
    if data.get("people_sealed") is not None:
        raise invalid("people_sealed", "intake seals people itself: send them as `people`, a list of persons")
    data["recorded_at"] = now
    try:
        return types[event_type].model_validate(data)
    except ValidationError as exc:
        raise Rejection(422, "validation", tuple(validation_problems(exc))) from None


# Fields naming who acts: always the caller (the token), never the body.
_ACTOR_FIELDS = {"IncidentAcknowledged": "acknowledged_by", "MajorIncidentDeclared": "declared_by"}
_AGENCY_FIELD = frozenset({"ResponderDispatched", "ResponderArrived", "MajorIncidentDeclared", "ComplaintRecorded",
                           "CasePassedToSafeguarding", "ClosureNoticeIssued", "ClosureOrderApplied",
                           "ClosureOrderMade", "ClosureOrderExtended", "WarrantExecuted"})
# The partnership's control room (and admins) record dispatches and arrivals of any agency's
# responders (permissions.acts_for_the_partnership); a declaration's agency is always the declarer's.
_RECORDED = frozenset({"ResponderDispatched", "ResponderArrived"})


def _forbidden(field_path: str, message: str) -> Rejection:
    return Rejection(403, "forbidden", ((field_path, message),))


_SOURCES: dict[tuple[str, str, str], Source] = {}  # by (kind, id, agency): a caller's, validated once
_SOURCES_KEPT = 4096


def _validated_source(source: dict[str, str]) -> Source | dict[str, str]:
    """The caller's `source` as a model, validated once per caller and shared by each of its events
    (a frozen model is taken as it is: a tenth of a batch item's validation); the dict itself when
    it is invalid (a token subject that is no Identifier), so the event's validation names the field."""
    key = (source["kind"], source["id"], source["agency"])
    model = _SOURCES.get(key)
    if model is None:
        try:
            model = Source.model_validate(source)
        except ValidationError:
            return source
        if len(_SOURCES) >= _SOURCES_KEPT:
            _SOURCES.clear()
        _SOURCES[key] = model
    return model


def _caller_is_the_actor(data: dict[str, Any], event_type: str, principal: Principal) -> None:
    """`source` from the token's role and subject, and the acting person and agency the caller's:
    filled when omitted, 403 naming the field when the body names someone else."""
    source = {"kind": permissions.source_kind(principal).value, "id": principal.subject, "agency": principal.agency.value}
    given = data.get("source")
    if given is not None:
        if not isinstance(given, dict) or set(given) - set(source) or (
            given.get("kind"), given.get("id"), given.get("agency") or source["agency"]
        ) != (source["kind"], source["id"], source["agency"]):
            raise _forbidden("source", f"must be your token's: kind {source['kind']}, id {source['id']}, "
                                       f"agency {source['agency']} (or omitted)")
    data["source"] = _validated_source(source)
    actor = _ACTOR_FIELDS.get(event_type)
    if actor is not None:
        if data.get(actor) not in (None, principal.subject):
            raise _forbidden(actor, "must be your token's subject (or omitted)")
        data[actor] = principal.subject
    if event_type in _AGENCY_FIELD:
        recorder = event_type in _RECORDED and permissions.acts_for_the_partnership(principal)  # logs another's dispatch
        if data.get("agency") not in (None, principal.agency.value) and not recorder:
            raise _forbidden("agency", "must be your token's agency (or omitted)")
        data.setdefault("agency", principal.agency.value)
        if data["agency"] is None:
            data["agency"] = principal.agency.value
