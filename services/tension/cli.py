"""`muster tension ...`: the weekly tension return."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import typer


def register(app: typer.Typer) -> None:
    tension = typer.Typer(help="Community tension: the weekly return.", no_args_is_help=True)
    app.add_typer(tension, name="tension")

    @tension.command("return")
    def weekly(
        week_ending: datetime = typer.Option(None, help="End of the week (UTC); default now."),
        exercise: bool = typer.Option(False, help="Read the exercise alerts instead of the live ones."),
    ) -> None:
        """Per ward: level now, trend over the week, peak and top indicators (from the alerts topic)."""
        from services.shared.settings import get_settings
        from services.shared.topics import TopicCatalog
        from services.shared.wards import load_wards
        from services.tension.reader import read_alerts
        from services.tension.weekly import render, weekly_return

        settings = get_settings()
        end = (week_ending or datetime.now(timezone.utc))
        end = end if end.tzinfo else end.replace(tzinfo=timezone.utc)
        topic = TopicCatalog.from_settings(settings).name("tension.alerts.exercise" if exercise else "tension.alerts")
        alerts = asyncio.run(read_alerts(settings, topic))
        names = {code: ward.name for code, ward in load_wards(settings.wards_file).items()}
        typer.echo(render(weekly_return(alerts, end, names), end))
