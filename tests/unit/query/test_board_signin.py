"""`make run`'s development sign-in: only with the published development key on loopback."""

import json

import pytest
from pydantic import SecretStr

from services.query.board.signin import board_url, development, sign_in_line
from services.shared.auth import Role, TokenVerifier
from services.shared.settings import LOCAL_DEV_JWT_SECRET, Settings

pytestmark = pytest.mark.unit


def test_a_local_run_prints_the_board_with_a_token_in_the_fragment_that_verifies():
    settings = Settings(jwt_secret=SecretStr(LOCAL_DEV_JWT_SECRET), jwt_jwks_file=None, query_host="127.0.0.1")
    assert development(settings)
    line = sign_in_line(settings)
    url = line.split()[-1]
    assert url.startswith(board_url(settings) + "#token=") and "?" not in url
    principal = TokenVerifier(settings).verify(url.split("#token=", 1)[1])
    assert principal.role is Role.CONTROL_ROOM


def test_a_real_key_or_an_open_address_gets_the_address_and_no_token(tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    for settings in (Settings(jwt_secret=SecretStr("x" * 40)), Settings(jwt_jwks_file=jwks),
                     Settings(query_host="0.0.0.0")):
        assert not development(settings)
        line = sign_in_line(settings)
        assert "token" not in line.replace("a token from", "") and "/board" in line
