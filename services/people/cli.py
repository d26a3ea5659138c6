"""`muster people erase` and `muster people retention` (docs/security.md), as the database's owner
or administrator (MUSTER_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import typer

from services.shared.settings import get_settings


def register(app: typer.Typer) -> None:
    people_app = typer.Typer(help="People's details: erasure and the retention schedule.", no_args_is_help=True)
    app.add_typer(people_app, name="people")

    @people_app.command("erase")
    def erase(
        incident: uuid.UUID = typer.Argument(..., help="The incident whose people are erased."),
        by: str = typer.Option(..., "--by", help="Who erases: your operator id (recorded)."),
        reason: str = typer.Option(..., "--reason", help="Why, e.g. the erasure request's reference (recorded)."),
    ) -> None:
        """Delete the incident's data key, recorded (who, when, why): no replay, rebuild, dead letter or
        read can reveal its people afterwards, and none can be recorded for it again."""
        from services.people import erasure

        try:
            result = asyncio.run(erasure.erase(get_settings(), incident, by=by, reason=reason))
        except ValueError as exc:
            typer.secho(f"muster: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from None
        when = result.erased_at.isoformat()
        typer.echo(f"people of {incident} erased at {when}" if result.erased_now
                   else f"people of {incident} were already erased at {when}")

    @people_app.command("retention")
    def retention(
        dry_run: bool = typer.Option(False, "--dry-run", help="List what falls due; erase nothing."),
        now: datetime | None = typer.Option(None, "--now", help="The time to judge by (default: now; with a timezone)."),
    ) -> None:
        """Erase the data keys that fall due under the retention schedule (MUSTER_PEOPLE_RETENTION_*).
        Run it daily (a cron job or the platform's scheduler)."""
        from services.people import erasure

        at = now or datetime.now(timezone.utc)
        if at.tzinfo is None:
            typer.secho("muster: --now: give a timezone (e.g. 2027-01-01T00:00:00Z)", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2)
        found = asyncio.run(erasure.retention(get_settings(), at, dry_run=dry_run))
        for item in found:
            typer.echo(f"{'due' if dry_run else 'erased'} {item.incident_id} ({item.rule}; closed "
                       f"{item.closed_at.isoformat()}, due {item.due_at.isoformat()})")
        typer.echo(f"{len(found)} {'fall due' if dry_run else 'erased'}")
