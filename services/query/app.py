"""The query service's one wiring point: the read API, the stream and the board, built from
Settings and run under uvicorn (`muster run query`). Importing this module connects to nothing.

It connects to PostgreSQL as `muster_query` (migration 0002): SELECT only, row-level
security on every table it reads, INSERT only on the access audit.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from services.query import access, queries
from services.query.board.views import router as board_router
from services.query.casework import router as casework_router
from services.query.contract import router as contract_router
from services.query.metrics import QueryMetrics
from services.query.routes import json_error, router
from services.query.service import NotFound, QueryService
from services.query.stream import Hub
from services.shared.auth import TokenVerifier, check_auth_config
from services.shared.db import STATUS_TABLES, role_dsn, role_problems
from services.shared.http import RequestMetrics, serve
from services.shared.logging import configure_logging, get_logger
from services.shared.runtime import keep_memory_trimmed
from services.shared.settings import Settings
from services.shared.wards import load_wards

log = get_logger("query")

QUERY_ROLE = "muster_query"


def query_dsn(settings: Settings) -> str:
    """The query role's URL: MUSTER_QUERY_DATABASE_URL, else the main URL as muster_query (no password)."""
    return role_dsn(settings, QUERY_ROLE, settings.query_database_url)


class UnsafeRole(RuntimeError):
    """The query service's database role would escape row-level security."""


async def check_role(dsn: str) -> None:
    """Refuse to serve as a role that owns the tables, is a superuser or has BYPASSRLS: row-level
    security would not apply to it, and every reader would see every record."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        problems = await role_problems(conn, STATUS_TABLES)
    finally:
        await conn.close()
    if problems:
        raise UnsafeRole("the query service refuses to start: " + "; ".join(problems)
                         + " (set MUSTER_QUERY_DATABASE_URL to the muster_query role)")


def create_app(settings: Settings) -> FastAPI:
    metrics = QueryMetrics()
    dsn = query_dsn(settings)
    hub = Hub(dsn, on_notification=metrics.notifications.inc)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await check_role(dsn)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=settings.query_pool_size, init=queries.init_connection,
            command_timeout=30, timeout=10,
            # filters vary in selectivity from call to call: plan each with its values, never one generic plan
            server_settings={"plan_cache_mode": "force_custom_plan", "application_name": "muster-query"},
        )
        app.state.service = QueryService(pool, load_wards(settings.wards_file), on_audit=metrics.audit_rows.inc)
        await hub.start()
        log.info("query ready", host=settings.query_host, port=settings.query_port)
        try:
            yield
        finally:
            await hub.stop()
            await pool.close()

    app = FastAPI(
        title="Muster query API",
        version="1",
        description="The current picture and its history: incidents, escalations, ward tension, a live stream "
        "and the control-room board. Who sees what: docs/query.md.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.hub = hub
    app.state.token_verifier = TokenVerifier(settings)
    app.include_router(router)
    app.include_router(board_router)
    app.include_router(casework_router)
    app.include_router(contract_router)
    app.add_middleware(RequestMetrics, record=metrics.record_request)
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return json_error(404, "not_found", "no such record")

    @app.exception_handler(access.ReasonRequired)
    async def reason_required(request: Request, exc: access.ReasonRequired):
        return json_error(428, "reason_required", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return json_error(422, "validation_failed", detail)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 422: "validation_failed",
                503: "unavailable"}.get(exc.status_code, "error")
        return json_error(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(OSError)
    async def database_unavailable(request: Request, exc: Exception):
        log.warning("database unavailable", error=type(exc).__name__)
        return json_error(503, "unavailable", "database unavailable; retry", {"Retry-After": "1"})


def run(settings: Settings) -> None:
    """`muster run query`: serve until SIGTERM/SIGINT, then stop cleanly."""
    configure_logging(settings.log_level, settings.log_format)
    check_auth_config(settings, settings.query_host)
    keep_memory_trimmed()
    serve(create_app(settings), host=settings.query_host, port=settings.query_port,
          graceful_shutdown_s=2)  # open streams are closed after this
