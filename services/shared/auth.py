"""Bearer-token authentication shared by every HTTP service.

Tokens are JWTs with the claims `sub`, `role`, `agency` and `exp`:

- locally, HS256 signed with `MUSTER_JWT_SECRET` (`muster token` mints one);
- in production, RS256 verified against the identity provider's public keys in the JWKS
  file `MUSTER_JWT_JWKS_FILE` (then HS256 tokens are refused).

`authenticate(request)` (or the FastAPI dependency `current_principal`) yields a frozen
Principal or answers 401.
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.shared.events import Agency
from services.shared.settings import LOCAL_DEV_JWT_SECRET, Settings


class Role(StrEnum):
    CONTROL_ROOM = "control_room"
    ENFORCEMENT_OFFICER = "enforcement_officer"
    CCTV_OPERATOR = "cctv_operator"
    RESPONDER = "responder"
    ANALYST = "analyst"
    SAFEGUARDING = "safeguarding"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's subject, role and agency (and when the token expires,
    epoch seconds; 0: not from a token)."""

    subject: str
    role: Role
    agency: Agency
    org: str | None = None  # the organisation within the agency (a housing provider), from the `org` claim
    expires_at: float = field(default=0.0, compare=False)


class AuthError(Exception):
    """A missing, malformed, expired or wrongly signed token; the message says which."""


class AuthConfigError(ValueError):
    """The service is configured in a way that would make its tokens unsafe."""


REQUIRED_CLAIMS = ("sub", "role", "agency", "exp")
LEEWAY_S = 30  # clock skew tolerated on exp
MIN_SECRET_BYTES = 32  # HS256 keys shorter than its hash are guessable (RFC 7518 section 3.2)
# Values a deployment might leave in place of a real secret: refused beyond loopback.
PLACEHOLDER_SECRETS = frozenset(
    {LOCAL_DEV_JWT_SECRET, "REPLACE-ME", "replace-me", "changeme", "change-me", "changeit", "secret", "password",
     "muster", "jwt-secret", "your-256-bit-secret", "example", "test", "dev", "development"}
)


class TokenVerifier:
    """Verifies a bearer token against the configured key and returns its Principal.

    Beyond the signature and the claims: a token living longer than MUSTER_JWT_MAX_LIFETIME_S
    (exp - iat, or exp - now) is refused, and `iss` / `aud` must match when configured (with a
    JWKS file they must be configured)."""

    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._max_lifetime_s = settings.jwt_max_lifetime_s
        if settings.jwt_jwks_file is not None:
            if not (self._issuer and self._audience):
                raise AuthConfigError("with MUSTER_JWT_JWKS_FILE, set MUSTER_JWT_ISSUER and MUSTER_JWT_AUDIENCE too")
            self._jwks = _load_jwks(settings.jwt_jwks_file)
            self._algorithms = ["RS256"]
            self._secret = None
        else:
            self._jwks = None
            self._algorithms = ["HS256"]
            self._secret = settings.jwt_secret.get_secret_value()
        self._cache: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        required = [*REQUIRED_CLAIMS, *(["iss"] if self._issuer else []), *(["aud"] if self._audience else [])]
        try:
            claims = jwt.decode(
                token,
                key=self._key_for(token),
                algorithms=self._algorithms,
                options={"require": required, "verify_aud": self._audience is not None},
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        self._check_lifetime(claims)
        principal = replace(principal_from_claims(claims), expires_at=float(claims["exp"]))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (principal, float(claims["exp"]) + LEEWAY_S)
        return principal

    def _check_lifetime(self, claims: dict) -> None:
        exp, iat = claims["exp"], claims.get("iat")
        if not isinstance(exp, (int, float)) or (iat is not None and not isinstance(iat, (int, float))):
            raise AuthError("invalid token: exp and iat must be numbers")
        # exp - iat is the issuer's own arithmetic: no clock skew to allow for. Only exp - now, read
        # on this host's clock against the issuer's, is given the leeway.
        if (iat is not None and exp - iat > self._max_lifetime_s) or exp - time.time() > self._max_lifetime_s + LEEWAY_S:
            raise AuthError(f"invalid token: lifetime longer than {self._max_lifetime_s} s (MUSTER_JWT_MAX_LIFETIME_S)")

    def _key_for(self, token: str):
        if self._jwks is None:
            return self._secret
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        keys = self._jwks.keys
        if kid is None and len(keys) == 1:
            return keys[0]
        for key in keys:
            if key.key_id == kid:
                return key
        raise AuthError(f"invalid token: no key with kid {kid!r} in the JWKS file")


def principal_from_claims(claims: dict) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise AuthError("invalid token: claim sub must be a non-empty string")
    try:
        role = Role(claims.get("role"))
    except ValueError:
        raise AuthError(f"invalid token: claim role must be one of {', '.join(Role)}") from None
    try:
        agency = Agency(claims.get("agency"))
    except ValueError:
        raise AuthError(f"invalid token: claim agency must be one of {', '.join(Agency)}") from None
    org = claims.get("org")
    if org is not None and (not isinstance(org, str) or not org.strip() or len(org) > 100):
        raise AuthError("invalid token: claim org must be a non-empty string of at most 100 characters")
    return Principal(subject=subject, role=role, agency=agency, org=org)


def mint_token(settings: Settings, *, subject: str, role: Role, agency: Agency, ttl_s: int = 8 * 3600,
               org: str | None = None) -> str:
    """A local HS256 token (`muster token`); production tokens come from the identity provider."""
    now = int(time.time())
    claims = {"sub": subject, "role": Role(role).value, "agency": Agency(agency).value, "iat": now, "exp": now + ttl_s}
    if org is not None:
        claims["org"] = org
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def check_auth_config(settings: Settings, host: str) -> None:
    """At start-up: beyond loopback, refuse the public development key, a known placeholder
    and an HS256 secret shorter than MIN_SECRET_BYTES; with a JWKS, require iss and aud."""
    if settings.jwt_jwks_file is not None:
        if not (settings.jwt_issuer and settings.jwt_audience):
            raise AuthConfigError("with MUSTER_JWT_JWKS_FILE, set MUSTER_JWT_ISSUER and MUSTER_JWT_AUDIENCE too")
        return
    check_secret("MUSTER_JWT_SECRET", settings.jwt_secret.get_secret_value(), LOCAL_DEV_JWT_SECRET, host,
                 "set MUSTER_JWT_JWKS_FILE (RS256) or MUSTER_JWT_SECRET")


def check_secret(name: str, secret: str, development: str, host: str, remedy: str) -> None:
    """At start-up, beyond loopback: refuse a key that is the public development one, a known
    placeholder, or shorter than MIN_SECRET_BYTES (AuthConfigError naming `name`). Each is judged
    without the whitespace around it: 34 spaces, or a short secret padded with them, or the
    development value with a trailing space, passed (red-team probe, 2026-12-06)."""
    if _is_loopback(host):
        return
    bare = secret.strip()
    if bare == development:
        raise AuthConfigError(f"refusing to listen on {host} with the local development value of {name}: {remedy}")
    if not bare or bare in PLACEHOLDER_SECRETS or bare.lower() in PLACEHOLDER_SECRETS:
        raise AuthConfigError(f"refusing to listen on {host}: {name} is a placeholder, not a secret")
    if len(bare.encode()) < MIN_SECRET_BYTES:
        raise AuthConfigError(
            f"refusing to listen on {host}: {name} is shorter than {MIN_SECRET_BYTES} bytes "
            "(e.g. openssl rand -hex 32)"
        )


def is_development_secret(settings: Settings) -> bool:
    """`muster token` mints only with the public development key (never a deployment's)."""
    return settings.jwt_jwks_file is None and settings.jwt_secret.get_secret_value() == LOCAL_DEV_JWT_SECRET


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=8)
def _load_jwks(path: Path) -> jwt.PyJWKSet:
    try:
        return jwt.PyJWKSet.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise AuthConfigError(f"JWKS file {path}: {exc}") from None


_bearer = HTTPBearer(auto_error=False, description="A JWT with the claims sub, role, agency and exp.")


# The OpenAPI security scheme, for routes that call `authenticate` directly.
BEARER_SCHEME_NAME = "HTTPBearer"
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "A JWT with the claims sub, role, agency and exp."}


def authenticate(request: Request) -> Principal:
    """The caller's Principal from the Authorization header, or HTTPException 401 with the
    reason. The app keeps its TokenVerifier in `app.state.token_verifier`."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return verifier.verify(credentials.strip())
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


async def current_principal(request: Request, _: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """FastAPI dependency form of `authenticate` (also documents the bearer scheme in OpenAPI)."""
    return authenticate(request)
