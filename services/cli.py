"""The one `muster` command. Each group lives with its room; this file only wires them."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from services.casework import cli as casework_cli
from services.chaos import cli as chaos_cli
from services.escalation import cli as escalation_cli
from services.intake import cli as intake_cli
from services.people import cli as people_cli
from services.projector import cli as projector_cli
from services.shared.settings import REPO_ROOT, Settings, get_settings
from services.simulator import cli as simulator_cli
from services.tension import cli as tension_cli

app = typer.Typer(help="Muster: incident and emergency coordination.", no_args_is_help=True)
dev_app = typer.Typer(help="Local Kafka and PostgreSQL for development and tests.", no_args_is_help=True)
topics_app = typer.Typer(help="Topics from topics.yaml.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(topics_app, name="topics")


def _fail(message: str) -> None:
    typer.secho(f"muster: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


# --- dev -------------------------------------------------------------------------------------


@dev_app.command("up")
def dev_up() -> None:
    """Start (or reuse) the local PostgreSQL and Kafka; wait until both answer."""
    from services import dev

    try:
        for line in dev.up(get_settings()):
            typer.echo(line)
    except dev.DevError as exc:
        _fail(str(exc))


@dev_app.command("down")
def dev_down() -> None:
    """Stop exactly what `dev up` started."""
    from services import dev

    for line in dev.down(get_settings()):
        typer.echo(line)


@dev_app.command("status")
def dev_status() -> None:
    """Say what runs."""
    from services import dev

    for line in dev.status(get_settings()):
        typer.echo(line)


# --- topics ----------------------------------------------------------------------------------


def _admin_settings() -> Settings:
    """The administration tooling (topics, ACLs, partners) authenticates as the super user."""
    from services.dev import as_admin

    return as_admin(get_settings())


async def _with_admin(settings: Settings, fn):
    from services.shared.kafka import make_admin
    from services.shared.topics import TopicCatalog

    catalog = TopicCatalog.from_settings(settings)
    admin = make_admin(settings)
    await admin.start()
    try:
        return await fn(admin, catalog)
    finally:
        await admin.close()


@topics_app.command("apply")
def topics_apply() -> None:
    """Create missing topics, raise partitions and configs, and make the ACLs match topics.yaml."""
    from services.shared.kafka import apply_topics
    from services.shared.kafka_security import apply_acls
    from services.shared.topics import TopicCatalog, TopicsFileError

    settings = _admin_settings()
    try:
        changes = asyncio.run(_with_admin(settings, apply_topics))
        acls = apply_acls(settings, TopicCatalog.from_settings(settings))
    except TopicsFileError as exc:
        _fail(str(exc))
    for line in changes or ["topics: nothing to change"]:
        typer.echo(line)
    for line in acls or ["acls: nothing to change"]:
        typer.echo(line)


@topics_app.command("diff")
def topics_diff() -> None:
    """Report drift between topics.yaml and the cluster (topics, configs, ACLs); change nothing.
    Exit 1 on drift."""
    from services.shared.kafka import topic_drift
    from services.shared.kafka_security import diff_acls
    from services.shared.topics import TopicCatalog

    settings = _admin_settings()
    drift = asyncio.run(_with_admin(settings, topic_drift))
    acls = diff_acls(settings, TopicCatalog.from_settings(settings))
    for line in drift.lines() or ["topics: no drift"]:
        typer.echo(line)
    if acls is None:
        typer.echo("acls: not compared (the broker has no authorizer)")
    else:
        for line in acls.lines() or ["acls: no drift"]:
            typer.echo(line)
    if not drift.empty() or (acls is not None and not acls.empty()):
        raise typer.Exit(code=1)


@topics_app.command("list")
def topics_list() -> None:
    """The topics of topics.yaml with their partitions and keys."""
    from services.shared.topics import TopicCatalog

    catalog = TopicCatalog.from_settings(get_settings())
    for spec in catalog:
        typer.echo(f"{catalog.name_of(spec):48} partitions={spec.partitions:<3} key={spec.key:20} mode={spec.mode}")


# --- partners -------------------------------------------------------------------------------

partners_app = typer.Typer(help="Partner agencies' Kafka principals (read their escalation topics).",
                           no_args_is_help=True)
app.add_typer(partners_app, name="partners")


@partners_app.command("add")
def partners_add(
    agency: str = typer.Argument(..., help="The agency (council, police, fire, ambulance, housing, voluntary)."),
    exercise: bool = typer.Option(False, "--exercise", help="Also read the agency's exercise escalation topics."),
) -> None:
    """Make the agency's principal: it reads only its agency's escalation topics, with consumer groups
    beginning `partner-<agency>.`. Prints its credentials once; Muster keeps no copy."""
    from services.shared.kafka_security import SecurityAdmin, SecurityDisabled
    from services.shared.topics import TopicCatalog

    settings = _admin_settings()
    try:
        user, password = SecurityAdmin(settings).add_partner(
            TopicCatalog.from_settings(settings), agency, exercise=exercise)
    except (ValueError, SecurityDisabled) as exc:
        _fail(str(exc))
    from services.shared.acl import partner_group_prefix

    catalog = TopicCatalog.from_settings(settings)
    typer.echo(f"partner {agency}: user {user}")
    typer.echo(f"password (shown once, store it in the partner's secret store): {password}")
    typer.echo(f"sasl mechanism: SCRAM-SHA-512; consumer groups must begin {partner_group_prefix(catalog, agency)}")
    topics = [catalog.escalation_topic(agency, exercise=False)]
    if exercise:
        topics.append(catalog.escalation_topic(agency, exercise=True))
    typer.echo(f"reads: {', '.join(topics)}")


@partners_app.command("remove")
def partners_remove(agency: str = typer.Argument(..., help="The agency whose principal to revoke.")) -> None:
    """Revoke every grant of the agency's principal and delete its credentials."""
    from services.shared.kafka_security import SecurityAdmin, SecurityDisabled
    from services.shared.topics import TopicCatalog

    settings = _admin_settings()
    try:
        lines = SecurityAdmin(settings).remove_partner(TopicCatalog.from_settings(settings), agency)
    except SecurityDisabled as exc:
        _fail(str(exc))
    for line in lines:
        typer.echo(line)


# --- schemas --------------------------------------------------------------------------------

schemas_app = typer.Typer(help="JSON Schemas of every event, generated from the models.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")


@schemas_app.command("export")
def schemas_export() -> None:
    """Write schemas/*.json and asyncapi.yaml from the event models and topics.yaml (commit the result)."""
    contract_export()


# --- contract -------------------------------------------------------------------------------

contract_app = typer.Typer(help="The published contract: schemas/, asyncapi.yaml and their evolution.",
                           no_args_is_help=True)
app.add_typer(contract_app, name="contract")


def contract_levels() -> dict[int, tuple[str, list[str]]]:
    """The escalation levels of the shipped rules file: the contract describes them."""
    from services.escalation.config import load_rules

    rules = load_rules(Settings.model_fields["escalation_rules_file"].default)
    return {int(n): (spec.name, [str(a) for a in spec.agencies]) for n, spec in rules.levels.items()}


@contract_app.command("export")
def contract_export() -> None:
    """Write schemas/*.json and asyncapi.yaml from the event models and topics.yaml (commit the result)."""
    from services.shared import asyncapi, schemas

    for path in [*schemas.export(), asyncapi.export(contract_levels())]:
        typer.echo(f"wrote {path.relative_to(REPO_ROOT)}")


@contract_app.command("check")
def contract_check() -> None:
    """Compare every schema with the last released one; exit 1 naming each field that would break a consumer."""
    from services.shared.compat import check_directory
    from services.shared.schemas import RELEASED_DIR, SCHEMAS_DIR

    breaks = check_directory(RELEASED_DIR, SCHEMAS_DIR)
    for problem in breaks:
        typer.secho(str(problem), fg=typer.colors.RED, err=True)
    if breaks:
        _fail(f"{len(breaks)} breaking change(s) against schemas/released/: keep the released version and add a "
              "new schema_version instead (docs/contract.md)")
    typer.echo("contract: every schema is compatible with schemas/released/")


@contract_app.command("release")
def contract_release(release: str = typer.Argument(..., help="The release id, e.g. 2026.12.1.")) -> None:
    """Export, then record the current schemas as released (refused if one would break a consumer)."""
    import shutil

    from services.shared import asyncapi, schemas
    from services.shared.compat import check_directory

    schemas.export()
    breaks = check_directory(schemas.RELEASED_DIR, schemas.SCHEMAS_DIR) if schemas.RELEASED_DIR.exists() else []
    if breaks:
        _fail("; ".join(str(b) for b in breaks))
    schemas.RELEASED_DIR.mkdir(parents=True, exist_ok=True)
    for path in schemas.SCHEMAS_DIR.glob("*.json"):
        if path.name != schemas.INDEX_FILE:
            shutil.copyfile(path, schemas.RELEASED_DIR / path.name)
    asyncapi.RELEASE_FILE.write_text(release + "\n")
    asyncapi.export(contract_levels())
    typer.echo(f"released {release}: schemas/released/ holds it; commit schemas/ and asyncapi.yaml")


# --- run ------------------------------------------------------------------------------------


@app.command("run")
def run(service: str = typer.Argument("all", help="all, or one service to run in the foreground.")) -> None:
    """Run one service, or `all`: local infrastructure, topics and every service until Ctrl-C."""
    from services.shared.startup import StartupError

    try:
        if service == "all":
            from services.supervisor import Supervisor

            Supervisor(get_settings()).run()
        else:
            from services import runner

            runner.run(service, get_settings())
    except StartupError as exc:
        _fail(str(exc))


# --- configuration ---------------------------------------------------------------------------


@app.command("config")
def config_table() -> None:
    """Print every environment variable as a Markdown table (the README's table)."""
    typer.echo("| variable | default | meaning |\n| --- | --- | --- |")
    for name, info in Settings.model_fields.items():
        default = info.default
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        if isinstance(default, Path) and default.is_relative_to(REPO_ROOT):
            default = f"./{default.relative_to(REPO_ROOT)}"
        typer.echo(f"| `MUSTER_{name.upper()}` | `{default}` | {info.description} |")


# The rooms' own commands: each services/<room>/cli.py defines register(app).
for _room_cli in (intake_cli, tension_cli, casework_cli, projector_cli, simulator_cli, chaos_cli, escalation_cli,
                  people_cli):
    _room_cli.register(app)


@app.callback()
def _start() -> None:
    """Before any command: the borough's ward list in force for this process (MUSTER_WARDS_FILE)."""
    from services.shared.wards import load_wards, use_wards

    try:
        use_wards(load_wards(get_settings().wards_file))
    except OSError as exc:
        _fail(f"the ward list cannot be read: {exc} (set MUSTER_WARDS_FILE)")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
