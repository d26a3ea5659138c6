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
