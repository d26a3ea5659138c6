"""What every HTTP service here shares: request metrics by route template, and uvicorn as they run it."""

from __future__ import annotations

import time
from collections.abc import Callable

Record = Callable[[str, str, int, float], None]  # route template, method, status, seconds


class RequestMetrics:
    """Plain ASGI middleware: every HTTP request handed to `record` by its route template
    (never the raw path, so labels stay bounded), its method, status and duration."""

    def __init__(self, app, record: Record) -> None:
        self.app = app
        self.record = record

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            self.record(route, scope["method"], status, time.perf_counter() - started)


def serve(app, *, host: str, port: int, graceful_shutdown_s: int) -> None:
    """Run `app` under uvicorn until SIGTERM/SIGINT: uvloop, httptools, no access log (each
    service writes its own canonical line) and the service's own logging configuration."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, loop="uvloop", http="httptools", access_log=False, log_config=None,
                timeout_graceful_shutdown=graceful_shutdown_s)
