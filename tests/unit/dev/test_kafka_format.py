"""Storage formatting passes the cluster id so that one beginning with '-' is not an option."""

from __future__ import annotations

import subprocess

from services.dev.kafka import LocalKafka
from services.shared.settings import Settings


def test_a_cluster_id_beginning_with_a_dash_reaches_the_storage_tool(tmp_path, monkeypatch):
    seen: list[list[str]] = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr("services.dev.kafka.uuid.uuid4", lambda: type("U", (), {"bytes": b"\xfb" * 16})())
    monkeypatch.setattr("services.dev.kafka.subprocess.run", fake_run)
    LocalKafka(Settings(home=tmp_path))._format()
    (cmd,) = seen
    cluster_args = [a for a in cmd if a.startswith("--cluster-id=")]
    assert cluster_args == ["--cluster-id=-_v7-_v7-_v7-_v7-_v7-w"]


def _config_of(tmp_path, protocol: str) -> LocalKafka:
    settings = Settings(home=tmp_path, kafka_security_protocol=protocol)
    kafka = LocalKafka(settings)
    kafka.root.mkdir(parents=True, exist_ok=True)
    kafka._write_config()
    return kafka


def test_a_running_broker_of_the_other_kind_is_a_one_line_instruction(tmp_path):
    """The settings ask for the secured broker but the one running is PLAINTEXT (an earlier version's
    default), or the other way round: say what to do, instead of every client timing out."""
    import pytest

    from services.dev.procs import DevError

    _config_of(tmp_path, "PLAINTEXT")
    with pytest.raises(DevError, match=r"runs PLAINTEXT but the settings ask for secured .* `muster dev down`, "
                                       r"then `muster dev up` \(converts its data in place\)"):
        LocalKafka(Settings(home=tmp_path))._check_running_mode()
    LocalKafka(Settings(home=tmp_path, kafka_security_protocol="PLAINTEXT"))._check_running_mode()  # same kind: fine

    _config_of(tmp_path, "SASL_PLAINTEXT")
    LocalKafka(Settings(home=tmp_path))._check_running_mode()
    with pytest.raises(DevError, match=r"runs secured \(SASL_PLAINTEXT\) but the settings ask for PLAINTEXT"):
        LocalKafka(Settings(home=tmp_path, kafka_security_protocol="PLAINTEXT"))._check_running_mode()


def test_the_secured_format_makes_a_scram_user_for_every_principal(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr("services.dev.kafka.subprocess.run",
                        lambda cmd, **kw: seen.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    kafka = LocalKafka(Settings(home=tmp_path))
    kafka._format()
    (cmd,) = seen
    users = [a.split("name=")[1].split(",")[0] for a in cmd if a.startswith("SCRAM-SHA-512=")]
    from services.shared.topics import TopicCatalog

    assert sorted(users) == sorted([*TopicCatalog.from_settings(kafka.settings).spec.principals, "node"])
    assert (tmp_path / "kafka" / "credentials.json").stat().st_mode & 0o777 == 0o600
