"""`muster exercise ...`: the exercise debrief, from the event log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    exercise_app = typer.Typer(help="Exercises: the debrief from the event log.", no_args_is_help=True)
    app.add_typer(exercise_app, name="exercise")

    @exercise_app.command("debrief")
    def debrief(
        exercise: str = typer.Argument(..., help="The exercise's name or id, as its reports give it."),
        out: Path = typer.Option(Path("."), help="Folder for the timeline picture (debrief-<exercise>.png)."),
    ) -> None:
        """Per agency, the time from the exercise's first report to acknowledgement, declaration, each
        level, each M/ETHANE update, dispatch, arrival and stand-down: a table and a timeline PNG."""
        from services.escalation.debrief import DebriefError, milestones, table, timeline_png
        from services.shared.kafka import read_events
        from services.shared.settings import get_settings
        from services.shared.topics import TopicCatalog

        settings = get_settings()
        catalog = TopicCatalog.from_settings(settings)
        topics = [catalog.name("incidents"), catalog.escalation_topic(None, mode="exercise")]
        try:
            rows = milestones(asyncio.run(read_events(settings, topics)), exercise)
        except DebriefError as exc:
            typer.secho(f"muster: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1) from None
        typer.echo(table(rows, exercise))
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in exercise)
        path = timeline_png(rows, exercise, out / f"debrief-{safe}.png")
        typer.echo(f"timeline: {path}")
