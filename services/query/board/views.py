"""The board's routes: the page (server-rendered), its panels as fragments, its static files."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from services.query.access import Reader
from services.query.board import render
from services.query.routes import reader, service
from services.query.service import QueryService
from services.shared.events import Mode

router = APIRouter(include_in_schema=False)

STATIC = {"board.css": "text/css; charset=utf-8", "board.js": "text/javascript; charset=utf-8"}


def _csp(intake_url: str) -> str:
    parts = urlsplit(intake_url)
    intake_origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {intake_origin}; frame-ancestors 'none'; form-action 'none'"
    ).replace("  ", " ")


@router.get("/board", response_class=HTMLResponse)
async def board_page(request: Request, svc: QueryService = Depends(service)):
    """The page, signed out: the operator's token is pasted into the page and sent only in the
    Authorization header (panels, stream, intake), never in a URL."""
    settings = request.app.state.settings
    html = render.page(intake_url=settings.intake_url, wards=svc.wards, board_panels=None)
    return HTMLResponse(html, headers={
        "Content-Security-Policy": _csp(settings.intake_url), "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    })


@router.get("/board/panels")
async def board_panels(who: Reader = Depends(reader), svc: QueryService = Depends(service)) -> dict:
    return render.panels(await svc.board(who, Mode.LIVE.value), datetime.now(timezone.utc))


@router.get("/board/static/{name}")
async def board_static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, "no such file")
    return Response(render.asset(name), media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})
