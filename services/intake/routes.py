"""The intake API's routes: parse, check, hand to the service, answer."""

from __future__ import annotations

import uuid

import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.intake import guard, permissions, schemas
from services.intake.service import IntakeService, ItemResult
from services.intake.validation import (
    Rejection,
    appended_fact,
    batch_item,
    calendar_fact,
    invalid,
    may_hold_control,
    new_incident,
    no_control,
    parse_json,
    payload_digest,
)
from services.shared.logging import get_logger
from services.shared.auth import BEARER_SCHEME_NAME, authenticate
from services.shared.events import utcnow

router = APIRouter()

ERRORS = {
    401: {"model": schemas.ErrorBody, "description": "Missing or invalid bearer token."},
    403: {"model": schemas.ErrorBody, "description": "The caller may see the incident but not make this change "
          "(role, relation to the incident, a field), or the body names someone other than the caller."},
    404: {"model": schemas.ErrorBody, "description": "No such incident, or not one this caller may see."},
    409: {"model": schemas.ErrorBody, "description": "The incident is already reported, or the event_id is "
          "another caller's or was sent with a different payload."},
    413: {"model": schemas.ErrorBody, "description": "Request body too large."},
    422: {"model": schemas.ErrorBody, "description": "Every bad field and why."},
    503: {
        "model": schemas.ErrorBody,
        "description": "The broker (or the idempotency store) could not confirm in time; retry after Retry-After.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    },
}
KEY_MAX = 200
# Authentication and the Idempotency-Key header are read directly (authenticate, _key) rather
# than through FastAPI dependencies, which cost a measurable share of each request; OpenAPI
# still documents both.
AUTH_AND_KEY = {
    "security": [{BEARER_SCHEME_NAME: []}],
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX},
            "description": "Same key from the same caller, same event: maps to a deterministic event_id.",
        }
    ],
}


def _key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= KEY_MAX:
        raise invalid("header.Idempotency-Key", f"must be 1 to {KEY_MAX} characters")
    return key


def _uuid_text(value: object) -> str:
    """asyncpg's own UUID type (ids read back from the idempotency store), which orjson does not know."""
    if isinstance(value, uuid.UUID) or type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(status: int, content: object) -> Response:
    return Response(orjson.dumps(content, default=_uuid_text), status_code=status, media_type="application/json")


def _service(request: Request) -> IntakeService:
    return request.app.state.service


def _accepted_body(accepted) -> dict:
    return {
        "incident_id": accepted.incident_id,  # orjson writes a UUID in its canonical form, faster than str()
        "event_id": accepted.event_id,
        "partition": accepted.partition,
        "offset": accepted.offset,
    }


@router.post(
    "/v1/incidents",
    status_code=202,
    response_model=schemas.Accepted,
    responses=ERRORS,
    openapi_extra={**AUTH_AND_KEY, **schemas.json_body("NewIncident")},
    summary="Raise an incident (an IncidentReported); intake assigns the incident_id.",
)
async def raise_incident(request: Request) -> Response:
    principal, idempotency_key = authenticate(request), _key(request)
    body = parse_json(await request.body())
    event = new_incident(body, principal, now=utcnow(), ids=request.app.state.ids, idempotency_key=idempotency_key)
    try:
        accepted = await _service(request).submit(
            event, principal, body.keys(), payload_digest(body), fresh=_fresh(body, idempotency_key)
        )
    except Rejection as rejection:
        if rejection.status == 409 and rejection.problems[:1] == guard.repeated_report(event.incident_id).problems:
            raise guard.derived_incident_taken("header.Idempotency-Key" if idempotency_key else "event_id",
                                               event.incident_id) from None
        raise
    return json_response(202, _accepted_body(accepted))


@router.post(
    "/v1/incidents/{incident_id}/events",
    status_code=202,
    response_model=schemas.Accepted,
    responses=ERRORS,
    openapi_extra={**AUTH_AND_KEY, **schemas.json_body("IncidentFactRequest")},
    summary="Append a fact to an incident (any incident fact except IncidentReported).",
)
async def append_fact(incident_id: uuid.UUID, request: Request) -> Response:
    principal, idempotency_key = authenticate(request), _key(request)
    body = parse_json(await request.body())
    event = appended_fact(body, principal, incident_id, now=utcnow(), ids=request.app.state.ids,
                          idempotency_key=idempotency_key)
    accepted = await _service(request).submit(
        event, principal, body.keys(), payload_digest(body, incident_id), fresh=_fresh(body, idempotency_key)
    )
    return json_response(202, _accepted_body(accepted))


def _fresh(body: dict, idempotency_key: str | None) -> bool:
    """Intake minted the event_id (no event_id, no key): no earlier copy can exist to look up."""
    return body.get("event_id") is None and idempotency_key is None


@router.post(
    "/v1/events:batch",
    status_code=200,
    response_model=schemas.BatchResults,
    responses={k: v for k, v in ERRORS.items() if k not in (403, 404, 409)},
    openapi_extra={**AUTH_AND_KEY, **schemas.json_body("EventBatch")},
    summary="Post many incident facts; each item is accepted or rejected on its own.",
)
async def post_batch(request: Request) -> Response:
    principal, idempotency_key = authenticate(request), _key(request)
    raw = await request.body()
    service = _service(request)
    # Validating a thousand items is one stretch of CPU: it takes a turn (IntakeService.turn), as
    # the batch's checks do later; the waits for PostgreSQL and the broker in between do not.
    async with service.turn():
        items, given, digests, fresh = _batch_items(request, principal, idempotency_key, raw)
    results = await service.submit_batch(items, principal, given, digests, fresh)
    return json_response(200, {"results": [_item_body(r) for r in results]})


def _batch_items(request: Request, principal, idempotency_key: str | None, raw: bytes):
    """The batch's items (each an event or its rejection), the fields each named, their payload
    digests and the event_ids intake minted."""
    body = parse_json(raw, walk=False)  # each item's control characters are its own rejection
    control = may_hold_control(raw)
    limit = request.app.state.settings.intake_batch_max
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise invalid("events", "required: a JSON object {\"events\": [...]}")
    if extra := sorted(set(body) - {"events"}):
        raise invalid(extra[0], "Extra inputs are not permitted")
    if len(body["events"]) > limit:
        raise invalid("events", f"at most {limit} events per batch, got {len(body['events'])}")
    now, ids = utcnow(), request.app.state.ids
    items: list = []
    given: list = []
    digests: list = []
    fresh = set()
    for index, raw in enumerate(body["events"]):
        given.append(raw.keys() if isinstance(raw, dict) else ())
        # not the position: a retry of some items, in a smaller batch, is the same payload (an
        # Idempotency-Key's event_id already depends on the position: its items differ by event_id)
        digests.append(payload_digest(raw) if isinstance(raw, dict) else None)
        try:
            if control:
                no_control(raw)
            items.append(batch_item(raw, principal, now=now, ids=ids, idempotency_key=idempotency_key, index=index))
        except Rejection as rejection:
            items.append(rejection.prefixed(f"events.{index}"))
            request.app.state.metrics.rejections.labels(rejection.reason).inc()
        else:
            if _fresh(raw, idempotency_key):
                fresh.add(items[-1].event_id)
    return items, given, digests, frozenset(fresh)


def _item_body(result: ItemResult) -> dict:
    accepted = result.accepted
    if accepted is not None:
        return {"index": result.index, "status": "accepted", **_accepted_body(accepted), "error": None, "code": None}
    return {
        "index": result.index,
        "status": "rejected",
        "event_id": result.event_id,
        "incident_id": result.incident_id,
        "partition": None,
        "offset": None,
        "error": result.rejection.detail if result.rejection else None,
        "code": result.rejection.status if result.rejection else None,
    }


@router.post(
    "/v1/tension/calendar",
    status_code=202,
    responses=ERRORS,
    openapi_extra=AUTH_AND_KEY,
    summary="Register, update or cancel a planned event, or silence a ward and category for a stated time.",
)
async def post_calendar_fact(request: Request) -> Response:
    """A `PlannedEventRegistered` (again with the same planned_event_id: an update),
    `PlannedEventCancelled` or `TensionSilenced`, to the tension calendar topic. Control room
    and admins may post all three, analysts planned events only (permissions.MAY_POST); a planned
    event or silence is changed or cancelled by its registering agency, the control room and
    admins only; a replay returns the first answer (calendar.py)."""
    principal, idempotency_key = authenticate(request), _key(request)
    body = parse_json(await request.body())
    event = calendar_fact(body, principal, now=utcnow(), ids=request.app.state.ids, idempotency_key=idempotency_key)
    accepted = await request.app.state.calendar.submit(event, principal, payload_digest(body))
    get_logger("intake").info("calendar fact accepted", event_type=event.event_type, event_id=str(event.event_id),
                              subject=principal.subject, topic=accepted.topic, partition=accepted.partition,
                              offset=accepted.offset)
    return json_response(202, {"event_id": accepted.event_id, type(event).topic_key_field: accepted.incident_id,
                               "partition": accepted.partition, "offset": accepted.offset})


@router.get(
    "/v1/permissions",
    response_model=schemas.Permissions,
    responses={401: ERRORS[401]},
    openapi_extra={"security": [{BEARER_SCHEME_NAME: []}]},
    summary="What the caller may post, from the same write-permission table that decides each post.",
)
async def my_permissions(request: Request) -> Response:
    principal = authenticate(request)
    return json_response(200, {
        "subject": principal.subject, "role": principal.role.value, "agency": principal.agency.value,
        "may_post": sorted(permissions.MAY_POST[principal.role]),
    })


@router.get("/healthz", summary="The process is up.")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="The broker and the idempotency store answer.", responses={503: {"description": "Not ready."}})
async def readyz(request: Request) -> Response:
    broker = await request.app.state.publisher.reachable()
    database = await request.app.state.store.ping()
    ready = broker and database
    return json_response(200 if ready else 503, {"ready": ready, "broker": broker, "database": database})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
