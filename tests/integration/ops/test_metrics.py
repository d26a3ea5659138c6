"""Every service's live /metrics: promtool accepts it, names follow muster_<service>_<what>_<unit>,
labels are bounded, the service-level indicators are there, and /healthz and /readyz answer."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest

from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

# The service-level indicators each service must expose (metric families, by # TYPE line).
SLIS = {
    "intake": ["muster_intake_request_duration_seconds", "muster_intake_publish_latency_seconds",
               "muster_intake_requests_total", "muster_intake_rejections_total"],
    "escalation": ["muster_escalation_decision_latency_seconds", "muster_escalation_consumer_lag_records",
                   "muster_escalation_dead_letters_total"],
    "tension": ["muster_tension_ward_level", "muster_tension_consumer_lag_records", "muster_tension_dead_letters_total"],
    "casework": ["muster_casework_consumer_lag_records", "muster_casework_dead_letters_total",
                 "muster_casework_alerts_total"],
    "projector": ["muster_projector_apply_lag_seconds", "muster_projector_consumer_lag_records",
                  "muster_projector_dead_letters_total"],
    "query": ["muster_query_requests_total", "muster_query_request_duration_seconds"],
}
# Standard families of prometheus_client's default registry (process and runtime).
STANDARD = re.compile(r"^(process|python)_")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UNBOUNDED_LABELS = {"incident_id", "event_id", "name", "description", "text", "address", "person", "subject"}


@pytest.fixture(scope="module")
def scraped(stack, canary_ran) -> dict[str, str]:
    """Each service's /metrics after the canary run (so labelled series exist)."""
    return {name: httpx.get(f"{s.url}/metrics", timeout=10).text for name, s in stack.services.items()}


def _families(text: str) -> dict[str, str]:
    return dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE "))


def test_promtool_accepts_every_services_live_metrics(scraped):
    problems = {}
    for name, text in scraped.items():
        result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        if result.returncode != 0 or result.stdout.strip() or result.stderr.strip():
            problems[name] = result.stdout + result.stderr
    assert problems == {}


def test_every_metric_is_named_for_its_service_with_a_unit_or_total(scraped):
    wrong = []
    for name, text in scraped.items():
        for family, kind in _families(text).items():
            if STANDARD.match(family):
                continue
            if not family.startswith(f"muster_{name}_"):
                wrong.append((name, family, "not muster_<service>_"))
            if kind == "counter" and not family.endswith("_total"):
                wrong.append((name, family, "counter without _total"))
            if re.search(r"_(milliseconds|ms|minutes|hours|bytes_total_total)$", family):
                wrong.append((name, family, "not a base unit"))
    assert wrong == []


def test_no_label_holds_an_incident_id_or_free_text(scraped):
    found = []
    for name, text in scraped.items():
        for line in text.splitlines():
            if line.startswith("#") or "{" not in line:
                continue
            labels = line[line.index("{") + 1: line.rindex("}")]
            keys = set(re.findall(r'(\w+)="', labels))
            if keys & UNBOUNDED_LABELS or UUID.search(labels):
                found.append((name, line))
    assert found == []


def test_every_service_level_indicator_is_exposed(scraped):
    missing = {name: [m for m in SLIS[name] if m not in _families(text)] for name, text in scraped.items()}
    assert {name: m for name, m in missing.items() if m} == {}


async def test_consumer_lag_is_reported_per_group_and_partition(stack, canary_ran):
    async def lag_lines(name: str) -> list[str]:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"{stack.services[name].url}/metrics")).text
        return [line for line in text.splitlines() if line.startswith(f"muster_{name}_consumer_lag_records{{")]

    for name in ("tension", "projector", "escalation"):
        if name not in stack.services:
            continue
        lines = await wait_until(lambda n=name: lag_lines(n), timeout=30, what=f"{name} reports consumer lag")
        assert all('group="' in line and 'partition="' in line and 'topic="' in line for line in lines)


def test_every_service_answers_healthz_and_readyz(stack):
    for service in stack.services.values():
        assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200, service.name
        assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200, service.name


def test_every_metric_the_dashboard_and_the_alert_rules_use_is_exposed(scraped):
    import json

    import yaml

    from services.shared.settings import REPO_ROOT

    board = json.loads((REPO_ROOT / "deploy/grafana/dashboards/muster.json").read_text())
    rules = yaml.safe_load((REPO_ROOT / "deploy/prometheus/rules.yml").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {m for e in exprs for m in re.findall(r"\b(muster_[a-z_]+)", e)}
    used |= {m.replace("(escalation|tension|projector)", s) for e in exprs for s in ("escalation", "tension", "projector")
             for m in re.findall(r"muster_\(escalation\|tension\|projector\)_[a-z_]+", e)}
    exposed = {f for text in scraped.values() for f in _families(text)}
    base = {re.sub(r"_(bucket|count|sum)$", "", m) for m in used}
    missing = sorted(m for m in base if m not in exposed and not m.startswith("muster_[")
                     and m not in ("muster_", ))
    assert missing == []
