"""`muster run`: one service in the foreground, or the whole system (`all`) until Ctrl-C."""

from __future__ import annotations

import signal
import time

import typer

from services.shared.settings import Settings


class RunError(RuntimeError):
    pass


# Every long-running service: name -> "module:function" taking Settings and running until stopped.
# A room's entry may name a module that has not landed yet; `muster run NAME` says so.
SERVICES: dict[str, str] = {
    "intake": "services.intake.app:run",
    "escalation": "services.escalation.app:run",
    "tension": "services.tension.app:run",
    "projector": "services.projector.app:run",
    "query": "services.query.app:run",
}


def run(service: str, settings: Settings) -> None:
    if service == "all":
        run_all(settings)
        return
    target = SERVICES.get(service)
    if target is None:
        raise RunError(f"unknown service {service!r}; choose from: all, {', '.join(sorted(SERVICES)) or '(none yet)'}")
    module_name, func_name = target.split(":")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise RunError(f"service {service!r} is not built yet ({module_name} is missing)") from None
        raise
    getattr(module, func_name)(settings)


def run_all(settings: Settings) -> None:
    import asyncio

    from services import dev
    from services.shared.kafka import apply_topics, make_admin
    from services.shared.topics import TopicCatalog

    try:
        for line in dev.up(settings):
            typer.echo(line)
    except dev.DevError as exc:
        raise RunError(str(exc)) from None

    async def topics() -> list[str]:
        admin = make_admin(settings)
        await admin.start()
        try:
            return await apply_topics(admin, TopicCatalog.from_settings(settings))
        finally:
            await admin.close()

    changes = asyncio.run(topics())
    typer.echo(f"topics: {len(changes)} changes applied" if changes else "topics: up to date")
    typer.echo(f"kafka {settings.kafka_bootstrap}, postgres {settings.database_url.get_secret_value()}")
    typer.echo("Muster is running. Ctrl-C stops everything.")
    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for line in dev.down(settings):
        typer.echo(line)
