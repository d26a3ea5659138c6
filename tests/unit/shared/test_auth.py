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
from services.shared.settings import LOCAL_DEV_JWT_SECRET, Settings

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


ISSUER, AUDIENCE = "https://idp.partnership.example", "muster"


def _jwks_settings(path, **kw) -> Settings:
    return Settings(jwt_jwks_file=path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **kw)


def _rs256(key, kid="k1", **claims):
    body = {"sub": "pc-4471", "role": "responder", "agency": "police", "exp": int(time.time()) + 60,
            "iss": ISSUER, "aud": AUDIENCE, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def test_with_a_jwks_file_an_rs256_token_verifies(jwks):
    key, path = jwks
    verifier = TokenVerifier(_jwks_settings(path))
    assert verifier.verify(_rs256(key)) == Principal("pc-4471", Role.RESPONDER, Agency.POLICE)


def test_with_a_jwks_file_an_hs256_token_is_refused(jwks):
    _, path = jwks
    token = mint_token(Settings(), subject="op-17", role=Role.ADMIN, agency=Agency.COUNCIL)
    with pytest.raises(AuthError):
        TokenVerifier(_jwks_settings(path)).verify(token)


def test_with_a_jwks_file_a_token_naming_an_unknown_key_is_refused(jwks):
    key, path = jwks
    with pytest.raises(AuthError, match="no key with kid 'k9'"):
        TokenVerifier(_jwks_settings(path)).verify(_rs256(key, kid="k9"))


def test_the_development_key_is_refused_on_a_public_address():
    with pytest.raises(AuthConfigError, match="local development value of MUSTER_JWT_SECRET"):
        check_auth_config(Settings(), "0.0.0.0")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_the_development_key_is_allowed_on_loopback(host):
    check_auth_config(Settings(), host)


def test_a_configured_secret_is_allowed_on_a_public_address():
    check_auth_config(SETTINGS, "0.0.0.0")


def test_a_jwks_file_without_an_issuer_and_audience_is_refused(jwks):
    _, path = jwks
    with pytest.raises(AuthConfigError, match="MUSTER_JWT_ISSUER"):
        TokenVerifier(Settings(jwt_jwks_file=path))
    with pytest.raises(AuthConfigError, match="MUSTER_JWT_AUDIENCE"):
        check_auth_config(Settings(jwt_jwks_file=path, jwt_issuer=ISSUER), "127.0.0.1")


@pytest.mark.parametrize(("claim", "value"), [("iss", "https://evil.example"), ("aud", "another-service"),
                                              ("iss", None), ("aud", None)])
def test_with_a_jwks_file_a_wrong_or_missing_issuer_or_audience_is_refused(jwks, claim, value):
    key, path = jwks
    with pytest.raises(AuthError):
        TokenVerifier(_jwks_settings(path)).verify(_rs256(key, **{claim: value}))


def test_a_configured_issuer_is_checked_on_hs256_tokens_too():
    settings = SETTINGS.model_copy(update={"jwt_issuer": ISSUER})
    plain = mint_token(SETTINGS, subject="op-17", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)
    with pytest.raises(AuthError, match="iss"):
        TokenVerifier(settings).verify(plain)


def test_a_token_living_longer_than_the_maximum_is_refused():
    longer = mint_token(SETTINGS, subject="op-17", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL, ttl_s=13 * 3600)
    with pytest.raises(AuthError, match="lifetime longer than 43200 s"):
        TokenVerifier(SETTINGS).verify(longer)
    no_iat = jwt.encode({"sub": "op-17", "role": "admin", "agency": "council", "exp": int(time.time()) + 30 * 86400},
                        SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256")
    with pytest.raises(AuthError, match="lifetime"):
        TokenVerifier(SETTINGS).verify(no_iat)
    shorter = SETTINGS.model_copy(update={"jwt_max_lifetime_s": 3600})
    two_hours = mint_token(SETTINGS, subject="op-17", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL, ttl_s=7200)
    TokenVerifier(SETTINGS).verify(two_hours)
    with pytest.raises(AuthError, match="lifetime longer than 3600 s"):
        TokenVerifier(shorter).verify(two_hours)


def test_a_token_one_second_longer_than_the_maximum_is_refused_and_one_exactly_at_it_accepted():
    """exp - iat is the issuer's own arithmetic: the clock-skew leeway is not added to the lifetime
    (it was: a token of 12 h and 25 s passed; found by the red-team probes of 2026-12-03)."""
    now = int(time.time()) - 20

    def token(lifetime_s: int) -> str:
        return jwt.encode({"sub": "op-17", "role": "control_room", "agency": "council", "iat": now,
                           "exp": now + lifetime_s}, SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256")

    TokenVerifier(SETTINGS).verify(token(12 * 3600))
    for over in (1, 25):
        with pytest.raises(AuthError, match="lifetime longer than 43200 s"):
            TokenVerifier(SETTINGS).verify(token(12 * 3600 + over))


def test_the_principal_carries_its_tokens_expiry():
    token = mint_token(SETTINGS, subject="op-17", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL, ttl_s=600)
    principal = TokenVerifier(SETTINGS).verify(token)
    assert 590 < principal.expires_at - time.time() <= 600


@pytest.mark.parametrize("secret", ["too-short-a-secret", "REPLACE-ME", "changeme", "secret",
                                    # whitespace around a secret is no part of it (red-team probe, 2026-12-06)
                                    " " * 34, "too-short-a-secret" + " " * 20, "\t" * 40])
def test_a_short_or_placeholder_secret_is_refused_beyond_loopback(secret):
    with pytest.raises(AuthConfigError, match="MUSTER_JWT_SECRET"):
        check_auth_config(Settings(jwt_secret=secret), "0.0.0.0")
    check_auth_config(Settings(jwt_secret=secret), "127.0.0.1")


def test_the_development_secret_with_whitespace_around_it_is_refused_beyond_loopback():
    with pytest.raises(AuthConfigError, match="development value of MUSTER_JWT_SECRET"):
        check_auth_config(Settings(jwt_secret=LOCAL_DEV_JWT_SECRET + " "), "0.0.0.0")
