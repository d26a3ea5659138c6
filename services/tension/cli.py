"""`muster tension ...`: the weekly tension return (the same definition as the query API's), and
the offline replay of the log (what the workers must have published)."""

from __future__ import annotations

import asyncio
from datetime import date

import typer


def register(app: typer.Typer) -> None:
    tension = typer.Typer(help="Community tension: the weekly return, the offline replay.", no_args_is_help=True)
    app.add_typer(tension, name="tension")

    @tension.command("return")
    def weekly(
        week: str = typer.Option(None, help="Any day of the ISO week (YYYY-MM-DD, Europe/London); default this week."),
        exercise: bool = typer.Option(False, help="Read the exercise alerts instead of the live ones."),
    ) -> None:
        """Per ward: level, trend over the ISO week, highest level and top indicators (from the alerts topic)."""
        from services.shared.settings import get_settings
        from services.shared.topics import TopicCatalog
        from services.shared.wards import load_wards
        from services.tension.reader import read_alerts
        from services.shared.weekly import LONDON, from_alerts, render

        try:
            day = date.fromisoformat(week) if week else None
        except ValueError:
            raise typer.BadParameter(f"not a date: {week!r} (use YYYY-MM-DD)", param_hint="--week") from None
        if day is None:
            from datetime import datetime

            day = datetime.now(LONDON).date()
        settings = get_settings()
        topic = TopicCatalog.from_settings(settings).name("tension.alerts.exercise" if exercise else "tension.alerts")
        alerts = asyncio.run(read_alerts(settings, topic))
        names = {code: ward.name for code, ward in load_wards(settings.wards_file).items()}
        typer.echo(render(from_alerts(alerts, day, names)))

    @tension.command("replay")
    def replay(
        exercise: bool = typer.Option(False, help="The exercise and test alerts (tension.alerts.exercise.v1) instead."),
        every_mode: bool = typer.Option(False, "--all", help="Live, exercise and test alerts, each with its mode."),
    ) -> None:
        """The alerts the tension workers raise for the incidents and calendar topics as they stand,
        by the pure rules (services/tension/offline.py), one JSON object a line, exactly as each
        record's value on the alerts topic. Reads the log from its start; writes nothing."""
        from services.shared.settings import get_settings
        from services.tension.offline import EXERCISE_MODES, replay_log, wire_lines
        from services.tension.state import LIVE

        modes = (LIVE, *EXERCISE_MODES) if every_mode else EXERCISE_MODES if exercise else (LIVE,)
        for line in wire_lines(asyncio.run(replay_log(get_settings(), modes=modes))):
            typer.echo(line)
