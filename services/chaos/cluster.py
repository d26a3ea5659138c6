"""A whole Muster of its own for a chaos run: broker, database, Toxiproxy and the five services.

Everything lives under the run's own home and on ports of its own (never the shared :9092 /
:5432 others use), so the harness may kill any part of it. The broker has one listener per
service that talks to Kafka, advertised at that service's Toxiproxy port, and each service
that talks to PostgreSQL reaches it through a proxy of its own: a network fault can be put
between one service and the broker or the database. The harness and the auditor use the
broker's and the database's own ports directly.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.dev import LocalKafka, LocalPostgres
from services.dev.procs import Backoff, DevError, pid_alive, port_open
from services.shared.settings import REPO_ROOT, Settings

# Which services talk to what (so which proxies each gets).
KAFKA_CLIENTS = ("intake", "escalation", "tension", "projector")
PG_CLIENTS = ("intake", "projector", "query")
SERVICES = ("intake", "escalation", "tension", "projector", "query")
TOXIPROXY_VERSION = "v2.12.0"


def toxiproxy_binary(settings: Settings) -> Path:
    """Where deploy/scripts/ensure-tools.sh installs toxiproxy-server (`go install`)."""
    return settings.cache_dir / f"toxiproxy-{TOXIPROXY_VERSION}" / "server"


class Ports:
    """Free TCP ports on 127.0.0.1 below the ephemeral range (a busy machine's clients hold those)."""

    def __init__(self) -> None:
        self.low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        self.taken: set[int] = set()
        self.rng = random.SystemRandom()

    def _free(self, port: int) -> bool:
        if port in self.taken:
            return False
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    def one(self) -> int:
        return self.pair(1)

    def pair(self, n: int = 2) -> int:
        """n consecutive free ports; returns the first."""
        while True:
            p = self.rng.randrange(20000, self.low - n)
            if all(self._free(p + i) for i in range(n)):
                self.taken.update(range(p, p + n))
                return p


class ChaosKafka(LocalKafka):
    """The local broker with one more listener per service, advertised at its proxy."""

    def __init__(self, settings: Settings, listeners: dict[str, tuple[int, int]]) -> None:
        super().__init__(settings)
        self.listeners = listeners  # service -> (broker's own port for it, its proxy's port)

    def _write_config(self) -> None:
        super()._write_config()
        lines = self.config.read_text().splitlines()
        names = {svc: f"SVC_{svc.upper()}" for svc in self.listeners}
        out = []
        for line in lines:
            if line.startswith("listeners="):
                line += "".join(f",{names[s]}://{self.host}:{own}" for s, (own, _) in self.listeners.items())
            elif line.startswith("advertised.listeners="):
                line += "".join(f",{names[s]}://{self.host}:{proxy}" for s, (_, proxy) in self.listeners.items())
            elif line.startswith("listener.security.protocol.map="):
                protocol = "SASL_PLAINTEXT" if self.secured else "PLAINTEXT"
                line += "".join(f",{n}:{protocol}" for n in names.values())
            out.append(line)
        if self.secured:  # each service's listener takes SCRAM as the client listener does (users from the metadata)
            for n in names.values():
                out += [f"listener.name.{n.lower()}.sasl.enabled.mechanisms=SCRAM-SHA-512",
                        f"listener.name.{n.lower()}.scram-sha-512.sasl.jaas.config="
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;"]
        self.config.write_text("\n".join(out) + "\n")

    def wait_ready(self, timeout: float = 240.0) -> None:
        """After a kill -9 the broker recovers every log first: on a busy small machine, a minute or more."""
        super().wait_ready(timeout)

    def kill9(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.05)


class ChaosPostgres(LocalPostgres):
    def stop_immediate(self) -> None:
        """`pg_ctl stop -m immediate`: the server quits without a checkpoint, as on a crash."""
        from services.dev.postgres import _bin

        pid = self.pid()
        subprocess.run([_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop"],
                       capture_output=True, **self._run_as(), cwd=self.root)
        while pid is not None and pid_alive(pid):
            time.sleep(0.05)


class Toxiproxy:
    """toxiproxy-server on its own port, driven through its HTTP API."""

    def __init__(self, binary: Path, port: int, log: Path) -> None:
        self.binary, self.port, self.log = binary, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=self.url, timeout=5)

    def start(self) -> None:
        if not self.binary.exists():
            raise DevError(f"toxiproxy-server is missing at {self.binary}: run `sh deploy/scripts/ensure-tools.sh`")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(self.binary), "-host", "127.0.0.1", "-port", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise DevError(f"toxiproxy-server did not start; see {self.log}")
            time.sleep(0.1)

    def proxy(self, name: str, listen: int, upstream: int) -> None:
        self.http.post("/proxies", json={"name": name, "listen": f"127.0.0.1:{listen}",
                                         "upstream": f"127.0.0.1:{upstream}", "enabled": True}).raise_for_status()

    def toxic(self, proxy: str, kind: str, attributes: dict, stream: str = "downstream") -> str:
        name = f"{kind}_{stream}"
        self.http.post(f"/proxies/{proxy}/toxics", json={"name": name, "type": kind, "stream": stream,
                                                          "toxicity": 1.0, "attributes": attributes}).raise_for_status()
        return name

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.http.delete(f"/proxies/{proxy}/toxics/{name}")

    def enable(self, proxy: str, enabled: bool) -> None:
        """A cut: a disabled proxy closes its connections and refuses new ones."""
        self.http.post(f"/proxies/{proxy}", json={"enabled": enabled}).raise_for_status()

    def reset(self) -> None:
        self.http.post("/reset").raise_for_status()

    def stop(self) -> None:
        self.http.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Service:
    name: str
    env: dict[str, str]
    log: Path
    port: int  # where it answers /metrics (intake, query: their API port)
    proc: subprocess.Popen | None = None
    pids: list[int] = field(default_factory=list)  # every pid it ran as (for the record)
    held: bool = False  # down on purpose (a kill9 or restart fault): its supervisor leaves it down
    started: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float | None = None
    restarts: list[dict] = field(default_factory=list)  # exits by itself: {"at", "code"} (for the auditor)

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", self.name], env=self.env,
                                     cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.pids.append(self.proc.pid)
        self.started, self.restart_at, self.held = time.monotonic(), None, False

    def tend(self) -> str | None:
        """The supervisor's part (Kubernetes' restartPolicy: Always): a service that exited by
        itself, not held down by a fault, is started again after its backoff; what happened, if anything."""
        if self.held or self.proc is None or self.running:
            return None
        now = time.monotonic()
        if self.restart_at is None:
            self.restart_at = now + self.backoff.after_exit(now - self.started)
            self.restarts.append({"at": time.time(), "code": self.proc.returncode})
            return f"{self.name} exited by itself with code {self.proc.returncode}; restarting"
        if now >= self.restart_at:
            self.start()
            return f"{self.name} restarted (pid {self.proc.pid})"
        return None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is None:
            return
        self.held = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """A clean stop: SIGTERM to its group, SIGKILL if it lingers."""
        self.held = True
        if not self.running:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def ready(self) -> bool:
        """Serving (intake, query) or consuming with its state recovered (the processors' /readyz)."""
        path = "/healthz" if self.name in ("intake", "query") else "/readyz"
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _security_of(base: Settings) -> dict:
    """The cluster's broker is secured (SASL/SCRAM, ACLs) unless the harness's settings say PLAINTEXT."""
    if base.kafka_security_protocol == "PLAINTEXT":
        return {"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": None}
    return {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "SCRAM-SHA-512"}


class Cluster:
    def __init__(self, home: Path, base: Settings, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        (home / "logs").mkdir(exist_ok=True)
        ports = Ports()
        kafka_port, self.pg_port = ports.pair(2), ports.one()
        self.kafka_listeners = {s: (ports.one(), ports.one()) for s in KAFKA_CLIENTS}
        self.pg_proxies = {s: ports.one() for s in PG_CLIENTS}
        self.toxiproxy_port = ports.one()
        self.service_ports = {s: ports.one() for s in SERVICES}
        self.settings = base.model_copy(update={
            "home": home, "kafka_bootstrap": f"127.0.0.1:{kafka_port}", "pg_port": self.pg_port,
            "database_url": type(base.database_url)(f"postgresql://postgres@127.0.0.1:{self.pg_port}/muster"),
            "topic_prefix": "", "kafka_principal": "admin", "kafka_sasl_username": None, "kafka_sasl_password": None,
            **_security_of(base),
        })
        self.kafka = ChaosKafka(self.settings, self.kafka_listeners)
        self.postgres = ChaosPostgres(self.settings)
        self.toxiproxy = Toxiproxy(toxiproxy_binary(base), self.toxiproxy_port, home / "logs" / "toxiproxy.log")
        self.extra_env = dict(extra_env or {})
        self.services: dict[str, Service] = {}

    def kafka_options(self) -> dict:
        """aiokafka's connection options beside the bootstrap for the harness's own clients (the monitor,
        the auditor): the administrator's, since they read every topic and group."""
        options = self.settings.kafka_client_options()
        options.pop("bootstrap_servers")
        return options

    def kafka_env(self) -> dict[str, str]:
        """The same as MUSTER_* variables, for a command with a home of its own (the auditor's replay)."""
        return {"MUSTER_KAFKA_SECURITY_PROTOCOL": self.settings.kafka_security_protocol,
                "MUSTER_KAFKA_SASL_MECHANISM": self.settings.kafka_sasl or "",
                "MUSTER_KAFKA_PRINCIPAL": "admin",
                "MUSTER_KAFKA_CREDENTIALS_FILE": str(self.settings.kafka_credentials_path)}

    # --- proxies --------------------------------------------------------------------------
    @staticmethod
    def kafka_proxy(service: str) -> str:
        return f"{service}-kafka"

    @staticmethod
    def pg_proxy(service: str) -> str:
        return f"{service}-postgres"

    def proxies_of(self, service: str) -> list[str]:
        return ([self.kafka_proxy(service)] if service in KAFKA_CLIENTS else []) + \
            ([self.pg_proxy(service)] if service in PG_CLIENTS else [])

    # --- lifecycle --------------------------------------------------------------------------
    def env_for(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
        env.update({
            "MUSTER_HOME": str(self.home), "MUSTER_CACHE_DIR": str(self.settings.cache_dir),
            "MUSTER_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap, "MUSTER_PG_PORT": str(self.pg_port),
            "MUSTER_DATABASE_URL": self.settings.database_url.get_secret_value(),
            "MUSTER_LOG_FORMAT": "json", "MUSTER_TOPIC_PREFIX": "",
            # A broker of its own, secured as the local default is (each service authenticates as its own
            # principal with the credentials in this home), unless the harness runs with PLAINTEXT.
            "MUSTER_KAFKA_SECURITY_PROTOCOL": self.settings.kafka_security_protocol,
            "MUSTER_KAFKA_SASL_MECHANISM": self.settings.kafka_sasl or "",
        })
        if service in KAFKA_CLIENTS:
            env["MUSTER_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{self.kafka_listeners[service][1]}"
        if service in PG_CLIENTS:
            env["MUSTER_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{self.pg_proxies[service]}/muster"
        port = str(self.service_ports[service])
        env[{"intake": "MUSTER_INTAKE_PORT", "query": "MUSTER_QUERY_PORT",
             "escalation": "MUSTER_ESCALATION_METRICS_PORT", "tension": "MUSTER_TENSION_METRICS_PORT",
             "projector": "MUSTER_PROJECTOR_METRICS_PORT"}[service]] = port
        env.update(self.extra_env)
        return env

    def start_infrastructure(self) -> None:
        self.postgres.up()
        self.kafka.up()
        self.toxiproxy.start()
        for service, (own, proxy) in self.kafka_listeners.items():
            self.toxiproxy.proxy(self.kafka_proxy(service), proxy, own)
        for service, proxy in self.pg_proxies.items():
            self.toxiproxy.proxy(self.pg_proxy(service), proxy, self.pg_port)

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """A `muster` command against this cluster, directly (no proxy)."""
        env = self.env_for("projector") | {"MUSTER_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
                                           "MUSTER_DATABASE_URL": self.settings.database_url.get_secret_value()}
        result = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise DevError(f"muster {' '.join(args)} failed: {(result.stdout + result.stderr).strip()[-500:]}")
        return result

    def prepare(self) -> None:
        self.cli("topics", "apply")
        self.cli("db", "migrate")

    def start_services(self) -> None:
        for name in SERVICES:
            svc = self.services[name] = Service(name, self.env_for(name), self.home / "logs" / f"{name}.log",
                                                self.service_ports[name])
            svc.start()

    def wait_ready(self, names: tuple[str, ...] = SERVICES, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(names)
        while waiting:
            waiting = [n for n in waiting if not self.services[n].ready()]
            for n in waiting:
                if not self.services[n].running:
                    raise DevError(f"{n} exited with code {self.services[n].proc.returncode}; "
                                   f"see {self.services[n].log}")
            if waiting and time.monotonic() > deadline:
                raise DevError(f"not ready after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(0.3)

    def restart_broker(self) -> None:
        self.kafka.up()

    def restart_postgres(self) -> None:
        self.postgres.up()

    def stop(self) -> None:
        for svc in self.services.values():
            try:
                svc.stop(timeout=15)
            except Exception:  # noqa: BLE001 - stop everything else all the same
                svc.kill9()
        self.toxiproxy.stop()
        for part in (self.kafka, self.postgres):
            try:
                part.down()
            except Exception:  # noqa: BLE001
                pass
