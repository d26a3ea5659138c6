"""The escalation processor's Prometheus metrics (bounded labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.shared.admission import ignored_counter
from services.shared.deadletter import dead_letters_counter
from services.shared.lag import consumer_lag_gauge
from services.shared.watchdog import waiting_gauge

ESCALATIONS = Counter(
    "muster_escalation_escalations_total", "Escalations produced, by level and target agency.", ["level", "agency"]
)
WINDOW_FULL = Counter("muster_escalation_window_full_total",
                      "Candidates that found their correlation window full: its oldest left (corroboration.MAX_CANDIDATES).")
STAND_DOWNS = Counter("muster_escalation_stand_downs_total", "Stand-downs produced.")
DECISION_LATENCY = Histogram(
    "muster_escalation_decision_latency_seconds",
    "From the triggering fact's occurred_at (or the deadline) to the escalation acknowledged by Kafka.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PENDING_DEADLINES = Gauge("muster_escalation_pending_deadlines", "Acknowledgement deadlines pending on this worker.")
DEAD_LETTERS = dead_letters_counter("escalation")
EVENTS = Counter("muster_escalation_events_total", "Records processed, by input.", ["input"])
CONSUMER_LAG = consumer_lag_gauge("escalation")
PROGRESS_WAITING = waiting_gauge("escalation")
PACKED = Counter("muster_escalation_packed_total", "Incident records packed onto the internal packed topic.")
IGNORED = ignored_counter("escalation")
STATES = Gauge("muster_escalation_states", "Incident states held in this worker's table (bounded by retention).")
RELEASED = Counter(
    "muster_escalation_released_total", "Finished incidents released from the table after their retention."
)
