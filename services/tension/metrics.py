"""The tension processor's Prometheus metrics (labels bounded: ward codes and levels only)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from services.shared.admission import ignored_counter
from services.shared.deadletter import dead_letters_counter
from services.shared.lag import consumer_lag_gauge
from services.shared.watchdog import waiting_gauge

WARD_LEVEL = Gauge("muster_tension_ward_level", "Current tension level per ward: 0 normal, 1 watch, 2 elevated, 3 high, 4 critical.", ["ward"])
ALERTS = Counter("muster_tension_alerts_raised_total", "Tension level changes published, by new level.", ["level"])
INDICATORS = Counter("muster_tension_indicators_total", "Incident reports counted in a ward's windows.")
LATE = Counter("muster_tension_late_events_total", "Reports and updates older than the grace period: counted here only.")
DUPLICATES = Counter("muster_tension_duplicate_events_total", "Reports seen again (redelivery) and ignored.")
EXERCISE = Counter("muster_tension_exercise_events_total", "Exercise and test facts, scored apart from live tension (alerts on the exercise topic).")
DEAD_LETTERS = dead_letters_counter("tension")
MOVED = Counter("muster_tension_recategorised_total", "Updates that moved a counted report's weight (category, grading or ward changed).")
WITHDRAWN = Counter("muster_tension_withdrawn_total", "Reports whose weight was withdrawn: linked duplicates, unfounded, false alarms.")
EARLY = Counter("muster_tension_early_alerts_total", "Level changes fired early, as the reports arrived, before their window closed.")
CONSUMER_LAG = consumer_lag_gauge("tension")
PROGRESS_WAITING = waiting_gauge("tension")
IGNORED = ignored_counter("tension")
