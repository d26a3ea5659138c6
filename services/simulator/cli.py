"""`muster simulate`: a simulated borough, to Kafka, to the intake API or to JSON lines."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone
from enum import StrEnum

import typer

from services.shared.events import Mode


class SinkChoice(StrEnum):
    kafka = "kafka"
    api = "api"
    jsonl = "jsonl"


def parse_start(value: str, now: datetime | None = None) -> datetime:
    """`yesterday` (00:00 UTC), `today`, `now` (to the minute), or an ISO 8601 time (UTC if no zone)."""
    now = now or datetime.now(timezone.utc)
    midnight = datetime.combine(now.date(), time(0), tzinfo=timezone.utc)
    keywords = {"yesterday": midnight - timedelta(days=1), "today": midnight,
                "now": now.replace(second=0, microsecond=0)}
    if value in keywords:
        return keywords[value]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not yesterday, today, now or an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def scenario_specs(values: list[str]) -> tuple[tuple[str, time | None], ...]:
    from services.simulator.scenarios import SCENARIOS, ScenarioError, parse

    if "all" in values:
        return tuple((name, None) for name in SCENARIOS)
    try:
        return tuple((scenario.name, when) for scenario, when in map(parse, values))
    except ScenarioError as exc:
        raise typer.BadParameter(str(exc)) from None


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        seed: int = typer.Option(7, help="Same seed and start: byte-identical events (ids included)."),
        start: str = typer.Option("yesterday", help="Start of the simulated period: yesterday, today, now or ISO."),
        hours: float = typer.Option(24.0, min=0.01, help="Length of the simulated period."),
        speedup: float = typer.Option(0.0, min=0.0, help="Simulated seconds per real second; 0: as fast as possible."),
        rate: float = typer.Option(0.0, min=0.0, help="At most this many events per second; 0: no limit."),
        scenario: list[str] = typer.Option([], "--scenario", "-s",
                                           help="Switch on a scenario (NAME or NAME@HH:MM London time; "
                                                "`all`). Repeatable. See --list-scenarios."),
        background: bool = typer.Option(True, help="Ordinary incidents across the 20 wards (--no-background: "
                                                   "scenarios only)."),
        intensity: float = typer.Option(1.0, min=0.0, help="Multiplies every ward's background rate."),
        mode: Mode = typer.Option(Mode.LIVE, help="live, exercise or test: stamped on every event."),
        exercise: str = typer.Option(None, help="exercise mode: the exercise's name or id, on every report "
                                                "(default 'simulated exercise')."),
        sink: SinkChoice = typer.Option(SinkChoice.kafka, help="kafka (fast), api (through intake) or jsonl."),
        out: str = typer.Option("-", help="jsonl sink: file to write, - for standard output."),
        api_url: str = typer.Option(None, help="api sink: intake base URL (default MUSTER_SIMULATE_API_URL)."),
        token: str = typer.Option(None, envvar="MUSTER_SIMULATE_TOKEN", show_envvar=True,
                                  help="api sink: bearer token."),
        events: int = typer.Option(None, min=1, help="Stop after N events."),
        load: bool = typer.Option(False, "--load", help="Benchmark: make N events (--events) first, send them "
                                                        "flat out or at --rate, print the achieved rate."),
        batch: int = typer.Option(None, min=1, help="Events per send (Kafka 2000, API 200)."),
        progress: bool = typer.Option(True, help="Show a progress bar on standard error."),
        list_scenarios: bool = typer.Option(False, "--list-scenarios", help="List the scenarios and exit."),
    ) -> None:
        """A realistic, deterministic simulated borough: incidents in 20 wards, their lives, scenarios."""
        from services.shared.settings import get_settings
        from services.simulator import app as simulator
        from services.simulator.feed import Pace, SimulateError
        from services.simulator.generator import FeedConfig
        from services.simulator.scenarios import SCENARIOS

        if list_scenarios:
            for s in SCENARIOS.values():
                typer.echo(f"{s.name:18} {s.time_of_day:%H:%M}  {s.title}")
            return
        options = simulator.Options(
            feed=FeedConfig(start=parse_start(start), hours=hours, seed=seed, intensity=intensity,
                            background=background, scenarios=scenario_specs(scenario), mode=mode,
                            exercise=exercise),
            sink=sink.value, pace=Pace(speedup=speedup or None, rate=rate or None), events=events, out=out,
            api_url=api_url, token=token, batch=batch, progress=progress,
        )
        run = simulator.load if load else simulator.simulate
        try:
            report = asyncio.run(run(get_settings().as_principal("simulator"), options))
        except SimulateError as exc:
            typer.secho(f"muster: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1) from None
        for line in report.lines():
            typer.echo(line, err=sink is SinkChoice.jsonl and out == "-")
