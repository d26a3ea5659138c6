"""`muster chaos`: the whole pipeline under load and faults, judged by the independent auditor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from services.shared.settings import get_settings


def register(app: typer.Typer) -> None:
    app.command("chaos")(chaos)


def chaos(
    schedule: str = typer.Option("full", help="full (every fault of issue 17, ~15 min) or short (~2 min)."),
    rate: float = typer.Option(100.0, min=1, help="Simulator events a second through intake."),
    run_dir: Path = typer.Option(None, help="Where the run keeps its cluster, records and report "
                                            "(default <MUSTER_HOME>/chaos/run)."),
    storm_seconds: float = typer.Option(30.0, min=1, help="How long the poison storm lasts."),
    storm_rate: float = typer.Option(2000.0, min=10, help="Poison records a second during the storm."),
) -> None:
    """Start a Muster of its own (own home and ports), drive load through intake, inject the
    faults of the schedule, then audit it from Kafka and PostgreSQL only. Prints the report
    (fault table, recovery times, violations) and writes timeline.png beside it; exits 1 on
    any violation."""
    from services.chaos.faults import SCHEDULES
    from services.chaos.run import Plan, execute

    if schedule not in SCHEDULES:
        raise typer.BadParameter(f"choose from {', '.join(SCHEDULES)}", param_hint="--schedule")
    settings = get_settings()
    where = run_dir or settings.home / "chaos" / "run"
    plan = Plan(rate=rate, schedule=schedule, storm_seconds=storm_seconds, storm_rate=storm_rate)
    verdict = asyncio.run(execute(where, settings, plan))
    typer.echo(verdict["report"])
    typer.echo(f"timeline: {where / 'timeline.png'}")
    raise typer.Exit(1 if verdict["violation_count"] else 0)
