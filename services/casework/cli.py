"""`muster casework ...`: the evidence bundle of a property, from the log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from services.shared.settings import get_settings

casework_app = typer.Typer(help="Casework: ASB cases and problem premises.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(casework_app, name="casework")


async def _events(settings):
    """Every fact on the incidents topic (what cannot be read is the dead-letter topic's)."""
    from services.shared.kafka import read_events
    from services.shared.topics import TopicCatalog

    return await read_events(settings, [TopicCatalog.from_settings(settings).name("incidents")])


@casework_app.command("bundle")
def bundle_cmd(
    uprn: str = typer.Argument(..., help="The property's UPRN."),
    out: Path | None = typer.Option(None, "--out", help="Write the HTML here (default: standard output)."),
    mode: str = typer.Option("live", help="live, exercise or test."),
) -> None:
    """The chronology of reports and actions about one property, for a closure application."""
    from pydantic import TypeAdapter, ValidationError

    from services.casework import bundle
    from services.casework.config import load_config
    from services.shared.events import Mode, Uprn

    try:
        TypeAdapter(Uprn).validate_python(uprn)
    except ValidationError:
        raise typer.BadParameter("a UPRN is 1 to 12 digits", param_hint="uprn") from None
    settings = get_settings()
    config = load_config(settings.casework_config_file)
    events = asyncio.run(_events(settings))
    rows, withheld = bundle.chronology(events, uprn, config, Mode(mode))
    html = bundle.render(uprn, rows, withheld)
    if out is None:
        typer.echo(html, nl=False)
    else:
        out.write_text(html)
        typer.echo(f"{out}: {len(rows)} entries, {withheld} safeguarding records withheld", err=True)
