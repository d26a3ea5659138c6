"""`muster run`: one service in the foreground, or the whole system (`all`) until Ctrl-C."""

from __future__ import annotations

from services.shared.settings import Settings
from services.shared.startup import StartupError


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
        raise StartupError(f"unknown service {service!r}; choose from: all, {', '.join(sorted(SERVICES)) or '(none yet)'}")
    module_name, func_name = target.split(":")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise StartupError(f"service {service!r} is not built yet ({module_name} is missing)") from None
        raise
    getattr(module, func_name)(settings)


def available(service: str) -> bool:
    """Has this service's room landed (its app module can be found)?"""
    import importlib.util

    module_name = SERVICES[service].split(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def run_all(settings: Settings) -> None:
    """Local infrastructure, topics, migrations, every built service as a child process, a
    compressed simulated day and its summary; then wait for Ctrl-C (or SIGTERM) and stop it all."""
    from services.supervisor import Supervisor

    Supervisor(settings).run()
