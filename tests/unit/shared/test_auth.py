"""Bearer tokens: HS256 locally, RS256 from a JWKS file in production, claims checked."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.shared.auth import (
    AuthConfigError,
    AuthError,
    Principal,
    Role,
    TokenVerifier,
    check_auth_config,
    mint_token,
)
from services.shared.events import Agency
from services.shared.settings import Settings

SETTINGS = Settings(jwt_secret="a-test-secret-that-is-long-enough-for-hs256")


def test_a_minted_token_verifies_to_its_principal():
    token = mint_token(SETTINGS, subject="op-17", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)
    assert TokenVerifier(SETTINGS).verify(token) == Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)


def test_the_principal_is_frozen():
    principal = Principal("op-17", Role.ANALYST, Agency.POLICE)
    with pytest.raises(AttributeError):
        principal.role = Role.ADMIN  # type: ignore[misc]


def test_an_expired_token_is_refused_as_expired():
    token = mint_token(SETTINGS, subject="op-17", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL, ttl_s=-120)
    with pytest.raises(AuthError, match="expired"):
        TokenVerifier(SETTINGS).verify(token)


def test_a_token_signed_with_another_key_is_refused():
    other = Settings(jwt_secret="another-secret-that-is-also-long-enough-here")
    token = mint_token(other, subject="op-17", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)
    with pytest.raises(AuthError, match="Signature verification failed"):
        TokenVerifier(SETTINGS).verify(token)


@pytest.mark.parametrize("missing", ["sub", "role", "agency", "exp"])
def test_a_token_without_a_required_claim_is_refused(missing):
    claims = {"sub": "op-17", "role": "control_room", "agency": "council", "exp": int(time.time()) + 60}
    del claims[missing]
    token = jwt.encode(claims, SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256")
    with pytest.raises(AuthError, match=missing):
        TokenVerifier(SETTINGS).verify(token)


@pytest.mark.parametrize(("claim", "value"), [("role", "superuser"), ("agency", "mi5"), ("sub", "")])
def test_a_token_with_an_unknown_role_agency_or_empty_subject_is_refused(claim, value):
    claims = {"sub": "op-17", "role": "control_room", "agency": "council", "exp": int(time.time()) + 60, claim: value}
    token = jwt.encode(claims, SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256")
    with pytest.raises(AuthError, match=f"claim {claim}"):
        TokenVerifier(SETTINGS).verify(token)


def test_an_unsigned_token_is_refused():
    token = jwt.encode({"sub": "x", "role": "admin", "agency": "council", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(AuthError):
        TokenVerifier(SETTINGS).verify(token)


@pytest.fixture
def jwks(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return key, path


def _rs256(key, kid="k1", **claims):
    body = {"sub": "pc-4471", "role": "responder", "agency": "police", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def test_with_a_jwks_file_an_rs256_token_verifies(jwks):
    key, path = jwks
    verifier = TokenVerifier(Settings(jwt_jwks_file=path))
    assert verifier.verify(_rs256(key)) == Principal("pc-4471", Role.RESPONDER, Agency.POLICE)


def test_with_a_jwks_file_an_hs256_token_is_refused(jwks):
    _, path = jwks
    token = mint_token(Settings(), subject="op-17", role=Role.ADMIN, agency=Agency.COUNCIL)
    with pytest.raises(AuthError):
        TokenVerifier(Settings(jwt_jwks_file=path)).verify(token)


def test_with_a_jwks_file_a_token_naming_an_unknown_key_is_refused(jwks):
    key, path = jwks
    with pytest.raises(AuthError, match="no key with kid 'k9'"):
        TokenVerifier(Settings(jwt_jwks_file=path)).verify(_rs256(key, kid="k9"))


def test_the_development_key_is_refused_on_a_public_address():
    with pytest.raises(AuthConfigError, match="development JWT key"):
        check_auth_config(Settings(), "0.0.0.0")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_the_development_key_is_allowed_on_loopback(host):
    check_auth_config(Settings(), host)


def test_a_configured_secret_is_allowed_on_a_public_address():
    check_auth_config(SETTINGS, "0.0.0.0")
