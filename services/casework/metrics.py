"""The casework processor's Prometheus metrics (labels bounded: kinds, events, clocks; no keys)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from services.shared.admission import ignored_counter
from services.shared.deadletter import dead_letters_counter
from services.shared.lag import consumer_lag_gauge
from services.shared.watchdog import waiting_gauge

INPUTS = Counter("muster_casework_inputs_total", "Case inputs applied (complaints, reports, steps), by case kind.", ["kind"])
REPLAYS = Counter("muster_casework_replayed_inputs_total", "Case inputs seen again after a restart and skipped.")
ALERTS = Counter("muster_casework_alerts_total", "Casework alerts published, by event type.", ["event_type"])
REJECTED = Counter("muster_casework_rejected_inputs_total", "Case inputs the law does not allow (logged with the reason).")
WARNINGS = Counter("muster_casework_clock_warnings_total", "Statutory clock warnings published, by clock.", ["clock"])
CASES = Gauge("muster_casework_cases", "Cases held by this worker, by kind.", ["kind"])
DEAD_LETTERS = dead_letters_counter("casework")
CONSUMER_LAG = consumer_lag_gauge("casework")
PROGRESS_WAITING = waiting_gauge("casework")
IGNORED = ignored_counter("casework")
