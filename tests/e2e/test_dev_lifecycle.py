"""`muster dev up | down | status` on ports of its own: idempotent, and down leaves nothing."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid

import pytest
from pydantic import SecretStr

from services.dev.procs import pid_alive
from services.shared.settings import REPO_ROOT
from tests.support import free_kafka_and_pg_ports

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SECURITY_VARIABLES = ("MUSTER_KAFKA_SECURITY_PROTOCOL", "MUSTER_KAFKA_SASL_MECHANISM", "MUSTER_KAFKA_SASL_USERNAME",
                      "MUSTER_KAFKA_SASL_PASSWORD", "MUSTER_KAFKA_PRINCIPAL")


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
    for name in SECURITY_VARIABLES:  # the defaults, whatever the shell running the tests sets
        env.pop(name, None)
    yield env
    _muster(env, "dev", "down")


def _settings(env):
    """The settings a `muster` process with this environment reads."""
    from services.shared.settings import Settings

    import os

    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(old)


def _pids(env) -> list[int]:
    from services.dev import LocalKafka, LocalPostgres

    s = _settings(env)
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


async def _send(settings, topic: str, value: bytes = b"{}") -> None:
    from services.shared.kafka import make_producer

    producer = make_producer(settings, request_timeout_ms=5000, metadata_max_age_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 30)
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), 30)
    finally:
        await producer.stop()


async def _refused(settings, topic: str) -> None:
    """The broker refuses this client: it cannot connect (no or wrong credentials) or may not write."""
    from aiokafka.errors import KafkaError

    with pytest.raises((KafkaError, asyncio.TimeoutError)):
        await _send(settings, topic)


def _without_credentials(settings):
    return settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": None})


def _wrong_password(settings):
    return settings.model_copy(update={"kafka_sasl_username": "intake",
                                       "kafka_sasl_password": SecretStr(uuid.uuid4().hex)})


async def test_the_default_broker_refuses_a_client_without_credentials(isolated_env):
    """`muster dev up` with no security setting at all starts the secured broker: SCRAM users and
    the ACLs of topics.yaml made, every anonymous or wrongly authenticated client refused."""
    from services.shared.topics import TopicCatalog

    up = await asyncio.to_thread(_muster, isolated_env, "dev", "up")
    assert up.returncode == 0, up.stderr
    assert "secured: SASL/SCRAM" in up.stdout and "acls: " in up.stdout, up.stdout
    settings = _settings(isolated_env)
    assert (settings.kafka_security_protocol, settings.kafka_sasl) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    incidents = TopicCatalog.from_settings(settings).name("incidents")

    await _send(settings.as_principal("intake"), incidents)  # its own credentials, its grant: written
    await _refused(_without_credentials(settings), incidents)
    await _refused(_wrong_password(settings), incidents)
    await _refused(settings.model_copy(update={"kafka_sasl_username": "nobody",  # a user the broker does not know
                                               "kafka_sasl_password": SecretStr(uuid.uuid4().hex)}), incidents)
    await _refused(settings.as_principal("projector"), incidents)  # authenticated, but no ACL lets it write


async def test_a_plaintext_broker_of_an_earlier_version_is_converted_in_place(isolated_env):
    """An engineer upgrading from the PLAINTEXT default: `muster dev up` on the running PLAINTEXT broker
    says what to do; after `muster dev down` it converts the data in place, records kept."""
    from services.shared.kafka import read_events
    from services.shared.topics import TopicCatalog

    plain_env = {**isolated_env, "MUSTER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    up = await asyncio.to_thread(_muster, plain_env, "dev", "up")
    assert up.returncode == 0, up.stderr
    assert "PLAINTEXT, no authentication" in up.stdout
    plain = _settings(plain_env)
    incidents = TopicCatalog.from_settings(plain).name("incidents")
    await _send(plain, incidents, b'{"kept": true}')

    stuck = await asyncio.to_thread(_muster, isolated_env, "dev", "up")
    assert stuck.returncode == 1
    assert "runs PLAINTEXT" in stuck.stderr and "`muster dev down`, then `muster dev up`" in stuck.stderr, stuck.stderr

    assert (await asyncio.to_thread(_muster, isolated_env, "dev", "down")).returncode == 0
    converted = await asyncio.to_thread(_muster, isolated_env, "dev", "up")
    assert converted.returncode == 0, converted.stderr
    assert "converted the PLAINTEXT data" in converted.stdout and "secured: SASL/SCRAM" in converted.stdout

    settings = _settings(isolated_env)
    assert await read_events(settings, [incidents], parse=lambda value: value) == [b'{"kept": true}']
    await _refused(_without_credentials(settings), incidents)
    await _send(settings.as_principal("intake"), incidents)
