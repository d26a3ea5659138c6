"""`muster db migrate` and `muster projector rebuild`."""

from __future__ import annotations

import asyncio

import typer

from services.shared.settings import get_settings


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="The PostgreSQL status store.", no_args_is_help=True)
    projector_app = typer.Typer(help="The projector that keeps the status store up to date.", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    app.add_typer(projector_app, name="projector")

    @db_app.command("migrate")
    def migrate() -> None:
        """Apply the pending SQL migrations (services/projector/migrations) in order; safe to repeat."""
        from services.projector.app import migrate as apply

        applied = asyncio.run(apply(get_settings()))
        for name in applied:
            typer.echo(f"applied {name}")
        if not applied:
            typer.echo("db: up to date")

    @projector_app.command("rebuild")
    def rebuild(progress: bool = typer.Option(True, help="Show a progress bar.")) -> None:
        """Rebuild the store from the start of the topics into fresh tables, then swap them in."""
        from services.projector.rebuild import rebuild as run_rebuild

        result = asyncio.run(run_rebuild(get_settings(), progress=progress))
        typer.echo(
            f"rebuilt from {result.records} records on {result.partitions} partitions "
            f"({result.facts} facts applied) and swapped in"
        )
