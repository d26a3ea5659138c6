"""The query API's routes: parse, read through the service as the caller, answer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime
from sse_starlette import EventSourceResponse

from services.query import access, schemas, stream
from services.query.access import Reader
from services.query.pagination import BadCursor, Cursor
from services.query.queries import IncidentFilters
from services.query.service import QueryService
from services.shared.weekly import LONDON
from services.shared.auth import Principal, current_principal
from services.shared.events import Agency, Category, IncidentStatus, Mode

router = APIRouter()

WARD_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
EARLIEST, LATEST = datetime(1900, 1, 1).year, datetime(2200, 1, 1).year
ERRORS = {
    401: {"model": schemas.ErrorBody, "description": "Missing or invalid bearer token."},
    422: {"model": schemas.ErrorBody, "description": "A bad parameter, named, and why."},
}
NOT_FOUND = {404: {"model": schemas.ErrorBody, "description": "No such record, or not one this caller may see."}}
REASON_NEEDED = {
    428: {"model": schemas.ErrorBody, "description": "An OFFICIAL-SENSITIVE record: state a reason in X-Access-Reason."}
}


def json_error(status: int, code: str, detail: str, headers: dict | None = None) -> Response:
    return Response(orjson.dumps({"error": code, "detail": detail}), status_code=status,
                    media_type="application/json", headers=headers)


def bad(field: str, message: str) -> HTTPException:
    return HTTPException(422, f"{field}: {message}")


def reader(
    principal: Principal = Depends(current_principal),
    reason: str | None = Header(
        None, alias=access.REASON_HEADER, max_length=access.REASON_MAX,
        description="Why you are reading OFFICIAL-SENSITIVE records (audited). Without it they are not shown.",
    ),
) -> Reader:
    try:
        return Reader(principal, access.clean_reason(reason))
    except ValueError as exc:
        raise bad(access.REASON_HEADER, str(exc).split(": ", 1)[-1]) from None


def service(request: Request) -> QueryService:
    return request.app.state.service


def _when(name: str, value: datetime | None) -> datetime | None:
    if value is not None and not EARLIEST <= value.year < LATEST:
        raise bad(name, f"must be between {EARLIEST} and {LATEST}")
    return value


def incident_filters(
    ward: Annotated[list[Annotated[str, Query(pattern=WARD_PATTERN)]], Query(description="Ward code(s).")] = [],
    status: Annotated[list[IncidentStatus], Query()] = [],
    category: Annotated[list[Category], Query()] = [],
    severity_min: Annotated[int | None, Query(ge=1, le=5)] = None,
    severity_max: Annotated[int | None, Query(ge=1, le=5)] = None,
    agency: Annotated[Agency | None, Query(description="Reported by, required or dispatched.")] = None,
    occurred_from: Annotated[AwareDatetime | None, Query(alias="from", description="occurred_at >= from")] = None,
    occurred_to: Annotated[AwareDatetime | None, Query(alias="to", description="occurred_at < to")] = None,
    mode: Annotated[Mode, Query(description="Live by default; exercise or test data only when asked for.")] = Mode.LIVE,
) -> IncidentFilters:
    if severity_min is not None and severity_max is not None and severity_min > severity_max:
        raise bad("severity_min", "must not exceed severity_max")
    return IncidentFilters(
        wards=list(ward), statuses=[s.value for s in status], categories=[c.value for c in category],
        severity_min=severity_min, severity_max=severity_max, agency=agency.value if agency else None,
        occurred_from=_when("from", occurred_from), occurred_to=_when("to", occurred_to),
        mode=mode.value,
    )


@router.get("/v1/incidents", response_model=schemas.IncidentPage, responses=ERRORS, tags=["incidents"])
async def list_incidents(
    filters: IncidentFilters = Depends(incident_filters),
    cursor: Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
):
    """Incidents newest first (occurred_at, then incident_id), keyset-paginated."""
    try:
        after = Cursor.decode(cursor) if cursor else None
    except BadCursor as exc:
        raise bad("cursor", str(exc).split(": ", 1)[-1]) from None
    return await svc.incidents(who, filters, after, limit)


@router.get(
    "/v1/incidents/{incident_id}", response_model=schemas.IncidentDetail,
    responses={**ERRORS, **NOT_FOUND, **REASON_NEEDED}, tags=["incidents"],
)
async def get_incident(incident_id: uuid.UUID, who: Reader = Depends(reader), svc: QueryService = Depends(service)):
    """One incident with its timeline (by occurred_at), escalations and linked reports."""
    return await svc.incident(who, incident_id)


@router.get("/v1/escalations", response_model=schemas.EscalationPage, responses=ERRORS, tags=["escalations"])
async def list_escalations(
    open: Annotated[bool, Query(description="Only those not stood down.")] = False,  # noqa: A002 - the public name
    ward: Annotated[str | None, Query(pattern=WARD_PATTERN)] = None,
    mode: Annotated[Mode, Query(description="Live by default; exercise or test data only when asked for.")] = Mode.LIVE,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
):
    """Escalations, most recently raised first."""
    return await svc.escalations(who, open_only=open, ward=ward, mode=mode.value, limit=limit)


@router.get("/v1/wards", response_model=list[schemas.WardOut], responses=ERRORS, tags=["tension"])
async def list_wards(
    mode: Annotated[Mode, Query()] = Mode.LIVE, who: Reader = Depends(reader), svc: QueryService = Depends(service)
):
    """Every ward of the borough with its tension level now."""
    return await svc.wards_now(who, mode.value)


@router.get(
    "/v1/wards/{code}/tension", response_model=schemas.WardTension, responses={**ERRORS, **NOT_FOUND}, tags=["tension"]
)
async def ward_tension(
    code: Annotated[str, Path(pattern=WARD_PATTERN)],
    mode: Annotated[Mode, Query()] = Mode.LIVE,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
):
    """A ward's tension level now and its changes, newest first."""
    return await svc.ward_tension(who, code, mode.value, limit)


@router.get("/v1/tension/return", response_model=schemas.TensionReturn, responses=ERRORS, tags=["tension"])
async def tension_return(
    week: Annotated[date | None, Query(description="Any day of the ISO week (default: the current week).")] = None,
    mode: Annotated[Mode, Query()] = Mode.LIVE,
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
):
    """The weekly tension return (ISO week, Europe/London): per ward, level, trend and top indicators.
    The same definition as `muster tension return` (services/shared/weekly.py, docs/tension.md)."""
    week = week or datetime.now(LONDON).date()
    if not EARLIEST <= week.year < LATEST:
        raise bad("week", f"must be between {EARLIEST} and {LATEST}")
    return await svc.tension_return(who, week, mode.value)


@router.get("/v1/tension/silences", response_model=list[schemas.SilenceOut], responses=ERRORS, tags=["tension"])
async def tension_silences(
    mode: Annotated[Mode, Query()] = Mode.LIVE, who: Reader = Depends(reader), svc: QueryService = Depends(service)
):
    """The operators' silences in force now (ward, category, until when, why, by whom); each
    expires on its own. Registered through intake's /v1/tension/calendar, kept as facts."""
    return await svc.silences(who, mode.value)


@router.get("/v1/tension/planned-events", response_model=list[schemas.PlannedEventOut], responses=ERRORS,
            tags=["tension"])
async def tension_planned_events(
    mode: Annotated[Mode, Query()] = Mode.LIVE, who: Reader = Depends(reader), svc: QueryService = Depends(service)
):
    """Planned events registered and not cancelled that are not over yet, soonest first."""
    return await svc.planned_events(who, mode.value)


@router.get("/v1/stats", response_model=schemas.Stats, responses=ERRORS, tags=["incidents"])
async def stats(
    filters: IncidentFilters = Depends(incident_filters), who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
):
    """Counts by ward, category and hour of the week (Europe/London): where and when people feel unsafe."""
    return await svc.stats(who, filters)


@router.get(
    "/v1/stream", responses={**ERRORS, 200: {"description": "text/event-stream: incident, escalation, tension"}},
    response_class=Response, tags=["stream"],
)
async def changes_stream(
    request: Request, who: Reader = Depends(reader), svc: QueryService = Depends(service),
    mode: Annotated[Mode, Query(description="Live by default; exercise or test changes only when asked for.")] = Mode.LIVE,
):
    """Server-sent events for new and changed incidents, escalations and tension levels this caller may see.
    The first event, `ready`, says the subscription is live; the stream ends (with an `expired` event) when
    the bearer token expires. The token travels in the Authorization header, never in the URL."""
    hub: stream.Hub = request.app.state.hub
    metrics = request.app.state.metrics

    expires_at = who.principal.expires_at

    async def events():
        queue = hub.subscribe()
        metrics.stream_clients.inc()
        try:
            yield stream.sse("ready", {"listening": hub.listening.is_set()})
            while True:
                try:  # the stream lives no longer than the token that opened it
                    changes = await stream.drain(queue, until=expires_at)
                except stream.TokenExpired:
                    yield stream.sse("expired", {"detail": "token expired: sign in again"})
                    return
                for kind, body in await svc.changes(
                    who, sorted(changes.incidents), sorted(changes.escalations), sorted(changes.tension), mode.value
                ):
                    metrics.stream_events.labels(kind).inc()
                    yield stream.sse(kind, body)
        except asyncio.CancelledError:
            raise
        finally:
            hub.unsubscribe(queue)
            metrics.stream_clients.dec()

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], responses={503: {"model": schemas.ErrorBody}})
async def readyz(svc: QueryService = Depends(service)) -> dict:
    """The database answers."""
    try:
        await asyncio.wait_for(svc.ready(), 2.0)
    except Exception as exc:  # noqa: BLE001 - any failure to answer is "not ready"
        raise HTTPException(503, f"database: {type(exc).__name__}") from None
    return {"status": "ready"}


@router.get("/metrics", tags=["operations"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (muster_query_*)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
