"""The intake service's one wiring point: FastAPI built from Settings, run under uvicorn.

The lifespan starts the idempotency store and the producer and stops them; importing this
module connects to nothing.
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from services.intake import schemas
from services.intake.calendar import CalendarIntake
from services.shared import ids
from services.intake.metrics import IntakeMetrics
from services.intake.middleware import BodyLimit, BodyTooLarge
from services.intake.publisher import Publisher
from services.intake.repository import IdempotencyStore
from services.intake.routes import json_response, router
from services.intake.service import IntakeService, Unavailable
from services.intake.validation import Rejection
from services.shared.auth import BEARER_SCHEME, BEARER_SCHEME_NAME, TokenVerifier, check_auth_config, check_secret
from services.shared.http import RequestMetrics, serve
from services.shared.logging import configure_logging, get_logger
from services.shared.runtime import PER_REQUEST_MMAP_THRESHOLD_BYTES, keep_memory_trimmed, tune_gc
from services.shared.settings import LOCAL_DEV_ID_KEY, Settings
from services.shared.db import role_dsn
from services.shared.topics import TopicCatalog

log = get_logger("intake")
INTAKE_ROLE = "muster_intake"  # its own schema `intake` only (services/shared/sql/roles.sql)


def create_app(settings: Settings) -> FastAPI:
    metrics = IntakeMetrics()
    topic = TopicCatalog.from_settings(settings).name("incidents")
    timeout_s = settings.intake_publish_timeout_s
    store = IdempotencyStore(role_dsn(settings, INTAKE_ROLE, settings.intake_database_url), timeout_s)
    service: IntakeService | None = None
    publisher = Publisher(
        settings,
        topic,
        on_latency=metrics.publish_latency.observe,
        on_late_ack=lambda event, md: service.on_late_ack(event, md) if service else None,
    )
    service = IntakeService(publisher, store, metrics, timeout_s, keys=store)
    calendar = CalendarIntake(publisher, store, TopicCatalog.from_settings(settings).name("tension.calendar"), timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await store.start()
        await publisher.start()
        log.info("intake ready", topic=topic, publish_timeout_s=timeout_s)
        try:
            yield
        finally:
            await service.drain()
            await publisher.stop()
            await store.stop()

    app = FastAPI(
        title="Muster intake API",
        version="1",
        description="Raise incidents and record every change to them as events on Kafka. See docs/intake.md.",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},  # Prometheus at /metrics instead
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.store = store
    app.state.publisher = publisher
    app.state.service = service
    app.state.calendar = calendar
    app.state.token_verifier = TokenVerifier(settings)
    app.state.ids = ids.from_settings(settings)  # the ids intake derives, keyed (services/shared/ids.py)
    app.include_router(router)
    app.add_middleware(BodyLimit, metrics=metrics, max_body_bytes=settings.intake_max_body_bytes)
    app.add_middleware(RequestMetrics, record=metrics.record_request)  # outside the limit: a 413 is counted too
    _allow_board_origins(app, settings)
    _add_error_handlers(app, metrics, retry_after=str(math.ceil(timeout_s)))
    _extend_openapi(app, settings)
    return app


def _allow_board_origins(app: FastAPI, settings: Settings) -> None:
    """The control-room board (another origin: the query service) raises and acknowledges from the browser."""
    origins = [o.strip() for o in settings.intake_cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"], max_age=600,
        )


def _error(status: int, code: str, problems: list[tuple[str, str]], headers: dict | None = None):
    body = {
        "error": code,
        "detail": "; ".join(f"{f}: {m}" for f, m in problems),
        "errors": [{"field": f, "message": m} for f, m in problems],
    }
    response = json_response(status, body)
    response.headers.update(headers or {})
    return response


def _add_error_handlers(app: FastAPI, metrics: IntakeMetrics, retry_after: str) -> None:
    codes = {403: "forbidden", 404: "not_found", 409: "conflict", 422: "validation_failed"}

    @app.exception_handler(Rejection)
    async def rejected(request: Request, exc: Rejection):
        metrics.rejections.labels(exc.reason).inc()
        return _error(exc.status, codes.get(exc.status, exc.reason), list(exc.problems))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        metrics.rejections.labels("validation").inc()
        problems = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        return _error(422, "validation_failed", problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 401:
            metrics.rejections.labels("unauthenticated").inc()
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return _error(exc.status_code, code, [("(request)", str(exc.detail))], exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge):
        metrics.rejections.labels("too_large").inc()
        return _error(413, "too_large", [("(body)", str(exc))])

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable):
        metrics.rejections.labels("unavailable").inc()
        return _error(503, "unavailable", [("(broker)", str(exc))], {"Retry-After": retry_after})


def _extend_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = doc.setdefault("components", {})
            components.setdefault("schemas", {}).update(schemas.component_schemas(settings.intake_batch_max))
            components.setdefault("securitySchemes", {})[BEARER_SCHEME_NAME] = BEARER_SCHEME
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi


def check_config(settings: Settings) -> None:
    """At start-up: the token keys (check_auth_config) and, beyond loopback, a real id key (services/shared/ids.py)."""
    check_auth_config(settings, settings.intake_host)
    check_secret("MUSTER_INTAKE_ID_KEY", settings.intake_id_key.get_secret_value(), LOCAL_DEV_ID_KEY,
                 settings.intake_host, "set MUSTER_INTAKE_ID_KEY, the same for every intake replica")


def run(settings: Settings) -> None:
    """`muster run intake`: serve until SIGTERM/SIGINT, then stop cleanly."""
    settings = settings.as_principal("intake")  # its own Kafka principal (topics.yaml), never the admin
    configure_logging(settings.log_level, settings.log_format)
    check_config(settings)
    app = create_app(settings)
    tune_gc()
    keep_memory_trimmed(mmap_threshold=PER_REQUEST_MMAP_THRESHOLD_BYTES)  # its batches' buffers from the heap
    serve(app, host=settings.intake_host, port=settings.intake_port,
          graceful_shutdown_s=int(math.ceil(settings.intake_publish_timeout_s)) + 1)
