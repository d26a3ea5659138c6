"""Prometheus metrics: names are muster_<service>_<what>_<unit>; labels are bounded
(never an incident id, a person or free text)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server


def serve_metrics(port: int, registry: CollectorRegistry = REGISTRY, addr: str = "0.0.0.0") -> None:
    """Expose /metrics on its own port (the processors have no HTTP app of their own)."""
    start_http_server(port, addr=addr, registry=registry)
