"""The Grafana dashboard is provisioned with its data source, and the JSON is the generated one."""

from __future__ import annotations

import json

import yaml

from services.shared.settings import REPO_ROOT

GRAFANA = REPO_ROOT / "deploy" / "grafana"


def load_builder():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_dashboard_is_what_build_dashboard_writes():
    assert json.loads((GRAFANA / "dashboards" / "muster.json").read_text()) == load_builder().dashboard()


def test_every_panel_queries_the_provisioned_prometheus_data_source():
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    board = json.loads((GRAFANA / "dashboards" / "muster.json").read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert panels and all(p["datasource"]["uid"] == source["uid"] for p in panels)
    assert all(t["expr"] for p in panels for t in p["targets"])
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_the_dashboard_provider_loads_the_directory_compose_mounts():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "muster.yml").read_text())
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_the_control_room_indicators_are_on_the_dashboard():
    exprs = " ".join(t["expr"] for p in load_builder().dashboard()["panels"] for t in p.get("targets", []))
    for metric in ("escalation_decision_latency_seconds", "muster_intake_request_duration_seconds",
                   "muster_intake_requests_total", "consumer_lag_records", "muster_projector_apply_lag_seconds",
                   "dead_letters", "muster_tension_ward_level"):
        assert metric in exprs, metric
