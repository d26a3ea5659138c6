"""`muster token` mints only with the public development key: a deployment's secret or JWKS
means tokens come from the identity provider, and a CLI that signs with it is a forgery tool."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.shared.auth import TokenVerifier
from services.shared.settings import Settings, get_settings

ARGS = ["token", "--role", "control_room", "--agency", "council", "--subject", "op-17"]


@pytest.fixture
def env(monkeypatch):
    for name in ("MUSTER_JWT_SECRET", "MUSTER_JWT_JWKS_FILE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_it_mints_a_token_with_the_development_key(env):
    result = CliRunner().invoke(app, ARGS)
    assert result.exit_code == 0, result.output
    assert TokenVerifier(Settings()).verify(result.output.strip()).subject == "op-17"


def test_it_refuses_to_mint_with_a_deployments_secret(env):
    env.setenv("MUSTER_JWT_SECRET", "a-real-deployment-secret-of-more-than-32-bytes")
    result = CliRunner().invoke(app, ARGS)
    assert result.exit_code == 2
    assert "refusing to mint" in result.output and "eyJ" not in result.output


def test_it_mints_no_token_longer_than_the_maximum_lifetime(env):
    result = CliRunner().invoke(app, [*ARGS, "--ttl-minutes", str(13 * 60)])
    assert result.exit_code != 0 and "eyJ" not in result.output
