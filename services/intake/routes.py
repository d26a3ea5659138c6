"""The intake API's routes: parse, check, hand to the service, answer."""

from __future__ import annotations

import uuid

import orjson
from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.intake import schemas
from services.intake.service import IntakeService, ItemResult
from services.intake.validation import Rejection, appended_fact, batch_item, invalid, new_incident, parse_json
from services.shared.auth import Principal, current_principal
from services.shared.events import utcnow

router = APIRouter()

ERRORS = {
    401: {"model": schemas.ErrorBody, "description": "Missing or invalid bearer token."},
    403: {"model": schemas.ErrorBody, "description": "The token's role may not post this event type."},
    413: {"model": schemas.ErrorBody, "description": "Request body too large."},
    422: {"model": schemas.ErrorBody, "description": "Every bad field and why."},
    503: {
        "model": schemas.ErrorBody,
        "description": "The broker (or the idempotency store) could not confirm in time; retry after Retry-After.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    },
}
IdempotencyKey = Header(
    None,
    alias="Idempotency-Key",
    min_length=1,
    max_length=200,
    description="Same key from the same caller, same event: maps to a deterministic event_id.",
)


def json_response(status: int, content: object) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _service(request: Request) -> IntakeService:
    return request.app.state.service


def _accepted_body(accepted) -> dict:
    return {
        "incident_id": str(accepted.incident_id),
        "event_id": str(accepted.event_id),
        "partition": accepted.partition,
        "offset": accepted.offset,
    }


@router.post(
    "/v1/incidents",
    status_code=202,
    response_model=schemas.Accepted,
    responses=ERRORS,
    openapi_extra=schemas.json_body("NewIncident"),
    summary="Raise an incident (an IncidentReported); intake assigns the incident_id.",
)
async def raise_incident(
    request: Request,
    principal: Principal = Depends(current_principal),
    idempotency_key: str | None = IdempotencyKey,
) -> Response:
    body = parse_json(await request.body())
    event = new_incident(body, principal, now=utcnow(), idempotency_key=idempotency_key)
    return json_response(202, _accepted_body(await _service(request).submit(event)))


@router.post(
    "/v1/incidents/{incident_id}/events",
    status_code=202,
    response_model=schemas.Accepted,
    responses=ERRORS,
    openapi_extra=schemas.json_body("IncidentFactRequest"),
    summary="Append a fact to an incident (any incident fact except IncidentReported).",
)
async def append_fact(
    incident_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(current_principal),
    idempotency_key: str | None = IdempotencyKey,
) -> Response:
    body = parse_json(await request.body())
    event = appended_fact(body, principal, incident_id, now=utcnow(), idempotency_key=idempotency_key)
    return json_response(202, _accepted_body(await _service(request).submit(event)))


@router.post(
    "/v1/events:batch",
    status_code=200,
    response_model=schemas.BatchResults,
    responses={k: v for k, v in ERRORS.items() if k != 403},
    openapi_extra=schemas.json_body("EventBatch"),
    summary="Post many incident facts; each item is accepted or rejected on its own.",
)
async def post_batch(
    request: Request,
    principal: Principal = Depends(current_principal),
    idempotency_key: str | None = IdempotencyKey,
) -> Response:
    body = parse_json(await request.body())
    limit = request.app.state.settings.intake_batch_max
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise invalid("events", "required: a JSON object {\"events\": [...]}")
    if extra := sorted(set(body) - {"events"}):
        raise invalid(extra[0], "Extra inputs are not permitted")
    if len(body["events"]) > limit:
        raise invalid("events", f"at most {limit} events per batch, got {len(body['events'])}")
    now = utcnow()
    items: list = []
    for index, raw in enumerate(body["events"]):
        try:
            items.append(batch_item(raw, principal, now=now, idempotency_key=idempotency_key, index=index))
        except Rejection as rejection:
            items.append(rejection.prefixed(f"events.{index}"))
            request.app.state.metrics.rejections.labels(rejection.reason).inc()
    results = await _service(request).submit_batch(items)
    return json_response(200, {"results": [_item_body(r) for r in results]})


def _item_body(result: ItemResult) -> dict:
    accepted = result.accepted
    if accepted is not None:
        return {"index": result.index, "status": "accepted", **_accepted_body(accepted), "error": None}
    return {
        "index": result.index,
        "status": "rejected",
        "event_id": str(result.event_id) if result.event_id else None,
        "incident_id": str(result.incident_id) if result.incident_id else None,
        "partition": None,
        "offset": None,
        "error": result.rejection.detail if result.rejection else None,
    }


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
