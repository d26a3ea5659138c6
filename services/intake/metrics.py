"""Intake's Prometheus metrics, in a registry of its own per app (bounded labels only)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "muster_intake_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "muster_intake_request_duration_seconds",
            "From a request's arrival to its answer (for POST /v1/events: the acknowledgement), by route template.",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.publish_latency = Histogram(
            "muster_intake_publish_latency_seconds",
            "From handing an event to the producer to the broker's acknowledgement (acks=all).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.rejections = Counter(
            "muster_intake_rejections_total",
            "Requests or batch items refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.events = Counter(
            "muster_intake_events_total",
            "Events by outcome: published, duplicate (an event_id already published), or recovered (found on the topic "
            "after its publisher died before recording it).",
            ["outcome"],
            registry=self.registry,
        )

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """services.shared.http.RequestMetrics' record."""
        self.requests.labels(route, method, str(status)).inc()
        self.request_duration.labels(route, method).observe(seconds)
