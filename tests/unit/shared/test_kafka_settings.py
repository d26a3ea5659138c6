"""The Kafka connection settings: secured (SASL/SCRAM-SHA-512) unless PLAINTEXT is asked for."""

from __future__ import annotations

import json

import pytest

from services.shared.settings import Settings

pytestmark = pytest.mark.unit

SECURITY = ("MUSTER_KAFKA_SECURITY_PROTOCOL", "MUSTER_KAFKA_SASL_MECHANISM", "MUSTER_KAFKA_SASL_USERNAME",
            "MUSTER_KAFKA_SASL_PASSWORD", "MUSTER_KAFKA_PRINCIPAL")


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in SECURITY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MUSTER_HOME", str(tmp_path))
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "credentials.json").write_text(json.dumps({"admin": "a-pass", "intake": "i-pass"}))
    return monkeypatch


def test_the_default_is_scram_on_sasl_plaintext_with_the_principals_local_password(env):
    settings = Settings()
    assert (settings.kafka_security_protocol, settings.kafka_sasl) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    options = settings.kafka_client_options()
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("admin", "a-pass")
    intake = settings.as_principal("intake").kafka_client_options()
    assert (intake["sasl_plain_username"], intake["sasl_plain_password"]) == ("intake", "i-pass")


def test_plaintext_alone_drops_sasl(env):
    env.setenv("MUSTER_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    options = Settings().kafka_client_options()
    assert options["security_protocol"] == "PLAINTEXT"
    assert not {k for k in options if k.startswith("sasl")}


def test_a_copy_switched_to_plaintext_sends_no_sasl(env):
    """model_copy runs no validator: the mechanism setting stays, but a PLAINTEXT client must not use it."""
    plain = Settings().model_copy(update={"kafka_security_protocol": "PLAINTEXT"})
    assert plain.kafka_sasl is None
    assert not {k for k in plain.kafka_client_options() if k.startswith("sasl")}
    from services.shared.kafka_security import admin_config

    assert not {k for k in admin_config(plain) if k.startswith("sasl")}


def test_an_unknown_protocol_names_the_field(env):
    from pydantic import ValidationError

    env.setenv("MUSTER_KAFKA_SECURITY_PROTOCOL", "SASL")
    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        Settings()
