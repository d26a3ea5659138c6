"""`muster run NAME`: one service in the foreground until SIGTERM/Ctrl-C.

SERVICES is the one list of long-running services (the supervisor of `muster run all`,
docker-compose and the Kubernetes manifests all follow it). Each `run(settings)` raises
services.shared.startup.StartupError for a configuration it cannot start with.
"""

from __future__ import annotations

import importlib

from services.shared.settings import Settings
from services.shared.startup import StartupError

# name -> "module:function" taking Settings and running until stopped.
SERVICES: dict[str, str] = {
    "intake": "services.intake.app:run",
    "escalation": "services.escalation.app:run",
    "tension": "services.tension.app:run",
    "projector": "services.projector.app:run",
    "query": "services.query.app:run",
}


def run(service: str, settings: Settings) -> None:
    target = SERVICES.get(service)
    if target is None:
        raise StartupError(f"unknown service {service!r}; choose from: all, {', '.join(sorted(SERVICES))}")
    module_name, func_name = target.split(":")
    getattr(importlib.import_module(module_name), func_name)(settings)
