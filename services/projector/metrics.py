"""The projector's Prometheus metrics (muster_projector_*). Labels are bounded: event types,
topics, partitions, error classes; never an incident id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.shared.admission import ignored_counter
from services.shared.deadletter import dead_letters_counter

RECORDS_APPLIED = Counter(
    "muster_projector_records_applied_total",
    "Facts applied to the store for the first time (re-deliveries are not counted), by event type.",
    ["event_type"],
)
BATCH_SIZE = Histogram(
    "muster_projector_batch_size_records",
    "Records per batch transaction.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
BATCH_DURATION = Histogram(
    "muster_projector_batch_duration_seconds",
    "Time to decode and write one batch, commit included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "muster_projector_consumer_lag_records",
    "Records on the partition not yet applied (high watermark minus the stored next offset).",
    ["group", "topic", "partition"],
)
APPLY_LAG = Histogram(
    "muster_projector_apply_lag_seconds",
    "From recorded_at to commit in the store, of the oldest fact of each batch (the worst lag in it).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
DEAD_LETTERS = dead_letters_counter("projector")
DB_RETRIES = Counter(
    "muster_projector_database_retries_total",
    "Batch writes retried because the database was unavailable.",
)
IGNORED = ignored_counter("projector")
