"""`make run`'s development sign-in: only with the published development key on loopback."""

import json

import pytest
from pydantic import SecretStr

from services.query.board.signin import board_url, development, sign_in_line
from services.shared.auth import Role, TokenVerifier
from services.shared.settings import LOCAL_DEV_JWT_SECRET, Settings

pytestmark = pytest.mark.unit


def test_a_local_run_prints_the_board_and_a_token_that_verifies_never_in_a_url():
    settings = Settings(jwt_secret=SecretStr(LOCAL_DEV_JWT_SECRET), jwt_jwks_file=None, query_host="127.0.0.1")
    assert development(settings)
    line = sign_in_line(settings)
    token = line.split()[-1]
    assert board_url(settings) in line and f"{board_url(settings)}#" not in line and "?" not in line
    principal = TokenVerifier(settings).verify(token)
    assert principal.role is Role.CONTROL_ROOM


def test_a_real_key_or_an_open_address_gets_the_address_and_no_token(tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    for settings in (Settings(jwt_secret=SecretStr("x" * 40)), Settings(jwt_jwks_file=jwks),
                     Settings(query_host="0.0.0.0")):
        assert not development(settings)
        line = sign_in_line(settings)
        assert line.count("\n") == 0 and "/board" in line and "eyJ" not in line
