"""`muster dev up | down | status` on ports of its own: idempotent, and down leaves nothing."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from services.dev.procs import pid_alive
from services.shared.settings import REPO_ROOT
from tests.support import free_kafka_and_pg_ports

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _muster(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=180
    )


@pytest.fixture
def isolated_env(tmp_path, base_settings):
    import os

    kafka_port, pg_port = free_kafka_and_pg_ports()
    env = {
        **os.environ,
        "MUSTER_HOME": str(tmp_path / "home"),
        "MUSTER_CACHE_DIR": str(base_settings.cache_dir),
        "MUSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "MUSTER_PG_PORT": str(pg_port),
        "MUSTER_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/muster",
        "MUSTER_KAFKA_HEAP": "256m",
    }
    yield env
    _muster(env, "dev", "down")


def _pids(env) -> list[int]:
    from services.dev import LocalKafka, LocalPostgres
    from services.shared.settings import Settings

    import os

    old = dict(os.environ)
    os.environ.update(env)
    try:
        s = Settings()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return [p for p in (LocalKafka(s).pid(), LocalPostgres(s).pid()) if p]


def test_up_is_idempotent_and_down_leaves_no_process(isolated_env):
    first = _muster(isolated_env, "dev", "up")
    assert first.returncode == 0, first.stderr
    assert "kafka: started" in first.stdout and "postgres: started" in first.stdout
    pids = _pids(isolated_env)
    assert len(pids) == 2

    second = _muster(isolated_env, "dev", "up")
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout
    assert _pids(isolated_env) == pids

    down = _muster(isolated_env, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
    assert "stopped" in _muster(isolated_env, "dev", "status").stdout


def test_a_port_taken_by_a_stranger_is_a_one_line_error(isolated_env):
    port = int(isolated_env["MUSTER_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", port))
        stranger.listen()
        isolated_env = {**isolated_env}
        result = _muster(isolated_env, "dev", "up")
    assert result.returncode == 1
    line = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line == [f"muster: port 127.0.0.1:{port} is taken by a process muster did not start: "
                    "stop it or set MUSTER_KAFKA_BOOTSTRAP to another port"]
    assert _pids(isolated_env) == [], "nothing may be started when a port is taken"
