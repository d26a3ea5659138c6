"""The alert rules and scrape configuration pass promtool, and each alert fires when it should."""

from __future__ import annotations

import subprocess

import yaml

from services.shared.settings import REPO_ROOT

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True)


def test_promtool_accepts_the_alert_rules():
    result = promtool("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_scrape_configuration():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_the_series_that_should_fire_it():
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_s_alerts_are_all_there_and_each_is_unit_tested():
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == {"MusterServiceDown", "MusterEscalationLatencyOverTarget", "MusterConsumerLagGrowing",
                      "MusterDeadLetters", "MusterTensionCritical"}
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"] if t.get("exp_alerts")}
    assert tested == alerts
