"""What the deployment files must agree with: the settings the code reads, the services the
runner knows, the commands the CLI has."""

from __future__ import annotations

from typer.testing import CliRunner

from services.cli import app as cli
from services.runner import SERVICES
from services.shared.settings import Settings

# Each service's listening port: (settings field, the room that serves it).
PORT_FIELDS = {
    "intake": "intake_port",
    "query": "query_port",
    "escalation": "escalation_metrics_port",
    "tension": "tension_metrics_port",
    "casework": "casework_metrics_port",
    "projector": "projector_metrics_port",
}


def unknown_variables(env: dict[str, object]) -> list[str]:
    """MUSTER_* variables that no Settings field reads (a typo there is silently ignored)."""
    return sorted(k for k in env if k.startswith("MUSTER_") and k[len("MUSTER_"):].lower() not in Settings.model_fields)


def port_of(service: str, env: dict[str, object]) -> int:
    """The port a service listens on with this environment: the variable if set, else the default."""
    field = PORT_FIELDS[service]
    return int(env.get(f"MUSTER_{field.upper()}", Settings.model_fields[field].default))


def command_problem(argv: list[str]) -> str | None:
    """None when `muster <argv>` names a real command (and for `run`, a real service)."""
    if argv[:1] == ["run"]:
        return None if len(argv) == 2 and argv[1] in SERVICES else f"no service {argv[1:]!r}"
    result = CliRunner().invoke(cli, [*argv, "--help"])
    return None if result.exit_code == 0 else f"`muster {' '.join(argv)}`: {result.output.strip()[-200:]}"
