"""The board's routes: its pages (server-rendered shells), the fragments each page fetches
with the caller's token and patches in place, and its static files.

The pages carry no data, so they need no token; every fragment is read as the caller, with
the same rules, redaction and audit as the /v1 API."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
import orjson

from services.query.access import Reader
from services.query.board import analysis_page, incident_page, model, render
from services.query.board import service as board_service
from services.query.routes import WARD_PATTERN, incident_filters, reader, service
from services.query.service import QueryService
from services.shared.events import Agency, Category, IncidentStatus, Mode

router = APIRouter(include_in_schema=False)

STATIC = {"board.css": "text/css; charset=utf-8", "board.js": "text/javascript; charset=utf-8"}


def _csp(intake_url: str) -> str:
    parts = urlsplit(intake_url)
    intake_origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {intake_origin}; frame-ancestors 'none'; form-action 'self'"
    ).replace("  ", " ")


def _headers(request: Request) -> dict[str, str]:
    return {"Content-Security-Policy": _csp(request.app.state.settings.intake_url), "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _page(request: Request, view: str, title: str, main: str) -> HTMLResponse:
    html = render.page(view=view, title=title, main=main, intake_url=request.app.state.settings.intake_url)
    return HTMLResponse(html, headers=_headers(request))


def _json(request: Request, body: dict) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=_headers(request))


@router.get("/board", response_class=HTMLResponse)
async def board_page(
    request: Request,
    ward: Annotated[list[Annotated[str, Query(pattern=WARD_PATTERN)]], Query()] = [],
    category: Annotated[list[str], Query(max_length=40)] = [],
    status: Annotated[list[str], Query(max_length=40)] = [],
    agency: Annotated[list[str], Query(max_length=40)] = [],
    svc: QueryService = Depends(service),
):
    chosen = {"ward": ward, "category": category, "status": status, "agency": agency}
    return _page(request, "board", "Board", render.board_main(svc.wards, chosen))


@router.get("/board/fragments/screen")
async def board_screen(
    request: Request,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    filters=Depends(incident_filters),
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
) -> Response:
    now = datetime.now(timezone.utc)
    screen = await board_service.screen(svc, who, filters, page, Mode.LIVE.value, now)
    return _json(request, render.screen_fragments(screen, svc.wards, filters.wards, now))


@router.get("/board/analysis", response_class=HTMLResponse)
async def analysis_view(request: Request):
    return _page(request, "analysis", "Analysis", analysis_page.MAIN)


@router.get("/board/fragments/analysis")
async def analysis_fragments(
    request: Request,
    by: Annotated[Literal["ward", "category"], Query()] = "ward",
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
) -> Response:
    now = datetime.now(timezone.utc)
    data = await board_service.analysis(svc, who, by, Mode.LIVE.value, now)
    return _json(request, analysis_page.fragments(data, svc.wards, now))


@router.get("/board/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_view(request: Request, incident_id: uuid.UUID):
    main = (f'<div id="incident-body" class="patch" data-incident-id="{incident_id}">'
            '<p class="empty">Sign in to see this incident.</p></div>')
    return _page(request, "incident", "Incident", main)


@router.get("/board/fragments/incidents/{incident_id}")
async def incident_fragment(
    request: Request, incident_id: uuid.UUID, who: Reader = Depends(reader), svc: QueryService = Depends(service)
) -> Response:
    detail = await svc.incident(who, incident_id)  # 404 / 428 as the API answers them
    now = datetime.now(timezone.utc)
    return _json(request, {
        "html": incident_page.page(detail, svc.wards, who.reason, now),
        "banner": render.banner(detail["incident"]["classification"] == render.SENSITIVE
                                or any(r["classification"] == render.SENSITIVE for r in detail["linked"])),
        "title": f'{detail["incident"]["category"] or "incident"} in {detail["incident"]["ward_name"] or "unknown ward"}',
    })


@router.get("/board/static/{name}")
async def board_static(name: str) -> Response:
    if name not in STATIC:
        return Response("no such file", status_code=404)
    return Response(render.asset(name), media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


# keep the filter vocabularies importable for the page's tests
FILTER_VALUES = {"category": [c.value for c in Category], "status": [s.value for s in IncidentStatus],
                 "agency": [a.value for a in Agency], "page_size": model.PAGE_SIZE}
