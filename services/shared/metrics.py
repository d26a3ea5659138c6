"""Prometheus metrics: names are muster_<service>_<what>_<unit>; labels are bounded
(never an incident id, a person or free text).

The processors have no HTTP app of their own: serve_metrics gives them one small HTTP server
with /metrics, and /healthz (the process answers) and /readyz (its `ready` check passes) for
container probes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        """Scrapes and probes are not worth a log line each."""


def _plain(start_response, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def health_app(registry: CollectorRegistry, ready: Callable[[], bool]):
    """WSGI app: /healthz, /readyz, and the registry's metrics on every other path (/metrics)."""
    metrics = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            try:
                is_ready = bool(ready())
            except Exception:  # noqa: BLE001 - a failing check means "not ready", never a crash
                is_ready = False
            if is_ready:
                return _plain(start_response, "200 OK", b"ready\n")
            return _plain(start_response, "503 Service Unavailable", b"not ready\n")
        return metrics(environ, start_response)

    return app


def serve_metrics(
    port: int,
    registry: CollectorRegistry = REGISTRY,
    addr: str = "0.0.0.0",
    ready: Callable[[], bool] = lambda: True,
) -> WSGIServer:
    """Serve /metrics, /healthz and /readyz on their own port, in a daemon thread."""
    server = make_server(addr, port, health_app(registry, ready), _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"metrics:{port}", daemon=True).start()
    return server
