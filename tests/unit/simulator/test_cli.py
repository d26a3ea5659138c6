"""`muster simulate` from the command line: start times, scenarios, and byte-identical reruns."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import typer
from typer.testing import CliRunner

from services.cli import app
from services.simulator.cli import parse_start, scenario_specs

NOW = datetime(2026, 11, 26, 15, 42, 17, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [
    ("yesterday", datetime(2026, 11, 25, tzinfo=timezone.utc)),
    ("today", datetime(2026, 11, 26, tzinfo=timezone.utc)),
    ("now", datetime(2026, 11, 26, 15, 42, tzinfo=timezone.utc)),
    ("2026-06-01T08:00", datetime(2026, 6, 1, 8, tzinfo=timezone.utc)),
    ("2026-06-01T08:00+01:00", datetime(2026, 6, 1, 7, tzinfo=timezone.utc)),
])
def test_start_takes_keywords_and_iso_times(value, expected):
    assert parse_start(value, NOW) == expected


def test_a_bad_start_is_a_clear_error():
    with pytest.raises(typer.BadParameter, match="'soon' is not yesterday, today, now or an ISO 8601 time"):
        parse_start("soon", NOW)


def test_all_switches_on_every_scenario():
    assert [name for name, _ in scenario_specs(["all"])] == ["poplar-fire", "whitechapel-hate", "bow-rave",
                                                            "knife-hospital"]


def test_two_runs_with_the_same_seed_write_the_same_bytes(tmp_path):
    runner = CliRunner()
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        result = runner.invoke(app, ["simulate", "--sink", "jsonl", "--out", str(out), "--seed", "3", "--hours", "6",
                                     "--start", "2026-11-20", "-s", "all", "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "incidents raised" in result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") > 50


def test_the_api_sink_without_a_token_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("MUSTER_SIMULATE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["simulate", "--sink", "api", "--hours", "1", "--no-progress"])
    assert result.exit_code == 1
    assert "needs a bearer token: pass --token or set MUSTER_SIMULATE_TOKEN" in result.output
