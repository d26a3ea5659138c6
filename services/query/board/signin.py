"""`make run`'s development sign-in: the board's address and a ready operator token to paste
into its sign-in field, for a local run only. The token is never put in a URL (the board sends
it only in the Authorization header). With any real key (a JWKS, or a secret other than the
published development one), or a board listening beyond loopback, there is no token: just
the address."""

from __future__ import annotations

from services.shared.auth import Role, _is_loopback, mint_token
from services.shared.events import Agency
from services.shared.settings import LOCAL_DEV_JWT_SECRET, Settings

DEV_SUBJECT = "dev-operator"
DEV_TTL_S = 8 * 3600


def development(settings: Settings) -> bool:
    """Only the published development key, on loopback: never a production configuration."""
    return (settings.jwt_jwks_file is None and settings.jwt_secret.get_secret_value() == LOCAL_DEV_JWT_SECRET
            and _is_loopback(settings.query_host))


def board_url(settings: Settings) -> str:
    host = settings.query_host if ":" not in settings.query_host else f"[{settings.query_host}]"
    return f"http://{host}:{settings.query_port}/board"


def sign_in_line(settings: Settings) -> str:
    """What `make run` prints as soon as the services are up."""
    if not development(settings):
        return f"board             {board_url(settings)}  (sign in with a token from your identity provider)"
    token = mint_token(settings, subject=DEV_SUBJECT, role=Role.CONTROL_ROOM, agency=Agency.COUNCIL, ttl_s=DEV_TTL_S)
    return (f"board             {board_url(settings)}  (open it now to watch the day live)\n"
            f"  development sign-in, a control-room operator's token to paste into the board's Token field:\n"
            f"  {token}")
