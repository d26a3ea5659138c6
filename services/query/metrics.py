"""The query service's Prometheus metrics, in a registry of its own per app (bounded labels only)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class QueryMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "muster_query_requests_total", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "muster_query_request_duration_seconds", "Time to answer a request, by route template.", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.audit_rows = Counter(
            "muster_query_audit_rows_total", "Sensitive-record reads written to the access audit.",
            registry=self.registry,
        )
        self.stream_clients = Gauge(
            "muster_query_stream_clients", "Readers connected to /v1/stream.", registry=self.registry
        )
        self.stream_events = Counter(
            "muster_query_stream_events_total", "Server-sent events delivered, by kind.", ["kind"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "muster_query_change_notifications_total", "Change notifications received from PostgreSQL.",
            registry=self.registry,
        )

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """services.shared.http.RequestMetrics' record: the stream is counted, not timed (it stays open)."""
        self.requests.labels(route, method, str(status)).inc()
        if route != "/v1/stream":
            self.latency.labels(route).observe(seconds)
