"""Writes dashboards/muster.json, the control room's dashboard: `python deploy/grafana/build_dashboard.py`.

The panels are data here so the JSON stays consistent (ids, grid, data source); the test
checks that every query names a metric the services expose.
"""

from __future__ import annotations

import json
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "muster-prometheus"}

# (title, kind, unit, [(expr, legend)], width, description)
ROWS: list[tuple[str, list[tuple]]] = [
    ("Is it flowing?", [
        ("Services up", "stat", "none", [('sum by (service) (up{job=~"muster-.+"})', "{{service}}")], 8,
         "1 per running process; 0 means Prometheus cannot scrape it."),
        ("Escalation decision latency p99", "stat", "s",
         [("muster:escalation_decision_latency_seconds:p99_5m", "p99")], 4,
         "Target 250 ms (alert MusterEscalationLatencyOverTarget)."),
        ("Escalations raised / 5m", "stat", "none",
         [("sum(increase(muster_escalation_escalations_total[5m]))", "escalations")], 4, "By every level and agency."),
        ("Dead letters / 10m", "stat", "none", [("sum by (service) (muster:dead_letters:increase10m)", "{{service}}")], 8,
         "Records no processor could read; any is an alert."),
    ]),
    ("Intake", [
        ("Acknowledgement latency", "timeseries", "s", [
            ('histogram_quantile(0.5, sum by (le) (rate(muster_intake_request_duration_seconds_bucket{route=~"/v1/.*"}[5m])))', "p50"),
            ('histogram_quantile(0.99, sum by (le) (rate(muster_intake_request_duration_seconds_bucket{route=~"/v1/.*"}[5m])))', "p99"),
            ("histogram_quantile(0.99, sum by (le) (rate(muster_intake_publish_latency_seconds_bucket[5m])))", "broker ack p99"),
        ], 12, "Arrival to answer, and the broker's acks=all acknowledgement."),
        ("Requests and errors", "timeseries", "reqps", [
            ('sum by (status) (rate(muster_intake_requests_total{route=~"/v1/.*"}[5m]))', "{{status}}"),
            ("sum by (reason) (rate(muster_intake_rejections_total[5m]))", "refused: {{reason}}"),
        ], 12, "By HTTP status; refusals by reason (validation, unavailable...)."),
    ]),
    ("Processors", [
        ("Consumer lag by group and partition", "timeseries", "none",
         [("muster:consumer_lag_records:max", "{{group}} {{topic}}[{{partition}}]")], 12,
         "Records after the group's committed offset. Growing for 10 minutes is an alert."),
        ("Escalation decision latency", "timeseries", "s", [
            ("histogram_quantile(0.5, sum by (le) (rate(muster_escalation_decision_latency_seconds_bucket[5m])))", "p50"),
            ("muster:escalation_decision_latency_seconds:p99_5m", "p99"),
        ], 12, "Triggering fact (or deadline) to the escalation acknowledged by Kafka."),
        ("Projector apply lag", "timeseries", "s", [
            ("histogram_quantile(0.5, sum by (le) (rate(muster_projector_apply_lag_seconds_bucket[5m])))", "p50"),
            ("histogram_quantile(0.95, sum by (le) (rate(muster_projector_apply_lag_seconds_bucket[5m])))", "p95"),
        ], 12, "Intake's recorded_at to the row committed in the status store."),
        ("Projector records applied", "timeseries", "ops",
         [("sum by (event_type) (rate(muster_projector_records_applied_total[5m]))", "{{event_type}}")], 12,
         "Facts written to the status store per second."),
    ]),
    ("Community tension", [
        ("Tension level per ward (0 normal, 1 elevated, 2 high, 3 critical)", "bargauge", "none",
         [("max by (ward) (muster_tension_ward_level)", "{{ward}}")], 16, "Level 3 is an alert (MusterTensionCritical)."),
        ("Tension alerts / 24h", "stat", "none",
         [("sum by (level) (increase(muster_tension_alerts_raised_total[24h]))", "{{level}}")], 8,
         "Level changes published, by new level."),
    ]),
]

THRESHOLDS = {
    "Escalation decision latency p99": [(None, "green"), (0.25, "red")],
    "Dead letters / 10m": [(None, "green"), (1, "red")],
    "Services up": [(None, "red"), (1, "green")],
    "Tension level per ward (0 normal, 1 elevated, 2 high, 3 critical)": [
        (None, "green"), (1, "yellow"), (2, "orange"), (3, "red")],
}


def panel(pid: int, x: int, y: int, spec: tuple) -> dict:
    title, kind, unit, queries, width, description = spec
    steps = [{"color": c, "value": v} for v, c in THRESHOLDS.get(title, [(None, "green")])]
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": width, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(queries)
        ],
    }


def dashboard() -> dict:
    panels, pid, y = [], 1, 0
    for row_title, specs in ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
        pid, y, x = pid + 1, y + 1, 0
        for spec in specs:
            if x + spec[4] > 24:
                x, y = 0, y + 8
            panels.append(panel(pid, x, y, spec))
            pid, x = pid + 1, x + spec[4]
        y += 8
    return {
        "uid": "muster-control-room",
        "title": "Muster control room",
        "tags": ["muster"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
        "templating": {"list": []},
        "annotations": {"list": []},
    }


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "dashboards" / "muster.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out}")
