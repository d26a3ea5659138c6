"""`muster token` (mint a local bearer token) and `muster raise` (raise an incident through
the intake API)."""

from __future__ import annotations

import json
from datetime import datetime

import typer

from services.shared.auth import Role, is_development_secret, mint_token
from services.shared.events import Agency, Category, utcnow
from services.shared.settings import get_settings


def register(app: typer.Typer) -> None:
    app.command("token")(token)
    app.command("raise")(raise_incident)


def token(
    role: Role = typer.Option(..., help="The caller's role."),
    agency: Agency = typer.Option(..., help="The caller's agency."),
    subject: str = typer.Option(..., help="Operator, officer or system id (never a person's name)."),
    ttl_minutes: int = typer.Option(480, min=1, max=12 * 60, help="Lifetime of the token (at most MUSTER_JWT_MAX_LIFETIME_S)."),
) -> None:
    """Mint a local HS256 bearer token with the public development key (development only: refused
    when MUSTER_JWT_SECRET or MUSTER_JWT_JWKS_FILE is set, since real tokens come from the identity provider)."""
    typer.echo(mint_token(_development_settings(), subject=subject, role=role, agency=agency, ttl_s=ttl_minutes * 60))


def _development_settings():
    settings = get_settings()
    if not is_development_secret(settings):
        typer.secho("muster: refusing to mint a token with a deployment's key: MUSTER_JWT_SECRET or "
                    "MUSTER_JWT_JWKS_FILE is set (tokens come from the identity provider)", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    return settings


def raise_incident(
    category: Category = typer.Option(..., help="What kind of incident."),
    severity: int = typer.Option(..., min=1, max=5, help="1 minor ... 5 catastrophic."),
    ward: str = typer.Option(..., help="ONS ward code, e.g. E05009331."),
    description: str = typer.Option(..., help="What is happening."),
    occurred_at: datetime | None = typer.Option(None, help="When it happened (ISO 8601, UTC if no offset); default now."),
    exercise: str | None = typer.Option(None, help="Raise an exercise incident of this exercise (name or id); it "
                                                   "never reaches live responder topics."),
    idempotency_key: str | None = typer.Option(None, help="Send the same key again to retry safely."),
    url: str | None = typer.Option(None, help="Intake API base URL; default http://MUSTER_INTAKE_HOST:MUSTER_INTAKE_PORT."),
    bearer: str | None = typer.Option(None, "--token", envvar="MUSTER_TOKEN", help="Bearer token (else a local one is minted)."),
    role: Role = typer.Option(Role.CONTROL_ROOM, help="Role of the locally minted token."),
    agency: Agency = typer.Option(Agency.COUNCIL, help="Agency of the locally minted token."),
    subject: str = typer.Option("muster-cli", help="Subject of the locally minted token."),
) -> None:
    """Raise an incident through the intake API; prints incident_id, event_id, partition and offset."""
    import httpx

    settings = get_settings()
    when = occurred_at or utcnow()
    if when.tzinfo is None:
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    body = {
        "category": category.value,
        "severity": severity,
        "location": {"ward_code": ward},
        "description": description,
        "occurred_at": when.isoformat(),
        "mode": "exercise" if exercise else "live",
    }
    if exercise:
        body["exercise"] = exercise
    if bearer is None:
        bearer = mint_token(_development_settings(), subject=subject, role=role, agency=agency)
    headers = {"Authorization": f"Bearer {bearer}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    base = url or f"http://{settings.intake_host}:{settings.intake_port}"
    try:
        response = httpx.post(f"{base}/v1/incidents", json=body, headers=headers, timeout=settings.intake_publish_timeout_s + 5)
    except httpx.HTTPError as exc:
        typer.secho(f"muster: intake API at {base} did not answer: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    if response.status_code != 202:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        typer.secho(f"muster: {response.status_code}: {detail}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    typer.echo(json.dumps(response.json()))
