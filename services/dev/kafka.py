"""A single-node Apache Kafka (KRaft, broker+controller) run from the jars on Maven Central."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from string import Template

from services.dev.procs import DevError, port_open, read_pid, stop_pid, wait_for
from services.shared.settings import REPO_ROOT, Settings

DEPLOY = REPO_ROOT / "deploy" / "kafka"
NODE = "node"  # the broker's own identity on its listeners (inter-broker and controller); no person or service holds it
SUPER_USER = "admin"


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class LocalKafka:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host = settings.kafka_host
        self.port = settings.kafka_port
        self.controller_port = self.port + 1
        self.libs = settings.cache_dir / f"kafka-{settings.kafka_version}" / "libs"
        self.root = settings.home / "kafka"
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.pidfile = self.root / "kafka.pid"
        self.config = self.root / "server.properties"

    # --- prerequisites ------------------------------------------------------------------
    def check_prerequisites(self) -> None:
        java = shutil.which("java")
        if not java:
            raise DevError("java not found: install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
        out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
        match = re.search(r'version "(\d+)', out)
        if not match or int(match.group(1)) < 17:
            raise DevError(f"Kafka 4 needs Java 17+, found: {out.splitlines()[0] if out else 'unknown'}")
        if not self.jars_ready() and not shutil.which("mvn"):
            raise DevError("mvn not found: install Maven (apt-get install maven) to fetch the Kafka jars")

    def jars_ready(self) -> bool:
        return (self.libs / f"kafka_2.13-{self.settings.kafka_version}.jar").exists()

    def fetch_jars(self) -> None:
        """Resolve the broker jars with Maven into the git-ignored cache (first run only)."""
        if self.jars_ready():
            return
        tmp = self.libs.with_name("libs.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            "mvn", "-q", "-B", "-f", str(DEPLOY / "pom.xml"),
            f"-Dkafka.version={self.settings.kafka_version}",
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            raise DevError("mvn could not fetch the Kafka jars: " + " | ".join(tail))
        tmp.rename(self.libs)

    # --- lifecycle ----------------------------------------------------------------------
    def pid(self) -> int | None:
        return read_pid(self.pidfile)

    def running(self) -> bool:
        return self.pid() is not None

    def preflight(self) -> None:
        """Fail early, in one line, on a missing prerequisite or a port someone else holds."""
        if self.running():
            return
        for port in (self.port, self.controller_port):
            if port_open(self.host, port):
                raise DevError(
                    f"port {self.host}:{port} is taken by a process muster did not start: "
                    f"stop it or set MUSTER_KAFKA_BOOTSTRAP to another port"
                )
        self.check_prerequisites()

    def up(self) -> str:
        if self.running():
            self._check_running_mode()
            self.wait_ready()
            users = self.provision_users()
            return f"kafka: already running (pid {self.pid()}) on {self.host}:{self.port}{users}"
        self.preflight()
        self.fetch_jars()
        for d in (self.data, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        converted = ""
        if self.secured and self._formatted() and not self.settings.kafka_credentials_path.exists():
            converted = self._convert_to_secured()
        self._write_config()
        self._format()
        pid = self._start()
        users = self.provision_users()
        mode = "secured: SASL/SCRAM, ACLs" if self.secured else "PLAINTEXT, no authentication"
        return f"kafka: {converted}started (pid {pid}) on {self.host}:{self.port} ({mode}){users}"

    def _start(self) -> int:
        """Start the broker on the config written; return its pid once it answers."""
        env = {
            **os.environ,
            "KAFKA_HEAP_OPTS": f"-Xms{self.settings.kafka_heap} -Xmx{self.settings.kafka_heap}",
        }
        cmd = [
            "java", f"-Xms{self.settings.kafka_heap}", f"-Xmx{self.settings.kafka_heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp", f"{self.libs}/*", "kafka.Kafka", str(self.config),
        ]
        with open(self.logs / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,
            )
        self.pidfile.write_text(str(proc.pid))
        try:
            self.wait_ready()
        except DevError:
            if proc.poll() is not None:
                raise DevError(f"kafka exited with code {proc.returncode}; see {self.logs / 'server.log'}") from None
            raise
        return proc.pid

    def wait_ready(self, timeout: float = 180.0) -> None:  # a JVM on a loaded 2-core machine can take a minute
        """Ready means it answers a metadata request, not just that the port is open."""
        wait_for(self._answers_metadata, timeout, "kafka", interval=0.3, log=self.logs / "server.log")

    def _answers_metadata(self) -> bool:
        if not self.running():
            raise DevError(f"kafka is not running; see {self.logs / 'server.log'}")
        if not port_open(self.host, self.port):
            return False
        from services.dev.probe import kafka_metadata_ok

        return kafka_metadata_ok(self.settings)

    def down(self) -> str:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return "kafka: not running"
        stop_pid(pid, timeout=30)
        self.pidfile.unlink(missing_ok=True)
        return f"kafka: stopped (pid {pid})"

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return "kafka: stopped"
        ready = "ready" if port_open(self.host, self.port) else "starting"
        return f"kafka: running (pid {pid}) on {self.host}:{self.port}, {ready}"

    # --- security -------------------------------------------------------------------------
    @property
    def secured(self) -> bool:
        """SASL/SCRAM with ACLs (the default), or a PLAINTEXT broker with no authorizer."""
        return self.settings.kafka_security_protocol == "SASL_PLAINTEXT"

    def _principals(self) -> list[str]:
        from services.shared.topics import TopicCatalog

        return [*TopicCatalog.from_settings(self.settings).spec.principals, NODE]

    def passwords(self) -> dict[str, str]:
        """One random password per principal of topics.yaml, and the broker's own (`node`), made
        once, kept in .muster/kafka/credentials.json (mode 0600), never in the repo."""
        path = self.settings.kafka_credentials_path
        if path.exists():
            return json.loads(path.read_text())
        passwords = {name: secrets.token_urlsafe(24) for name in self._principals()}
        self._write_passwords(passwords)
        return passwords

    def _write_passwords(self, passwords: dict[str, str]) -> None:
        path = self.settings.kafka_credentials_path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(passwords, out, indent=1)
        partial.replace(path)

    def _admin(self, settings: Settings | None = None):
        """The security admin as the super user, with this broker's local credentials."""
        from services.shared.kafka_security import SecurityAdmin

        settings = settings or self.settings
        return SecurityAdmin(settings.model_copy(update={"kafka_principal": SUPER_USER, "kafka_sasl_username": None,
                                                         "kafka_sasl_password": None}))

    def provision_users(self) -> str:
        """Secured: a SCRAM user for every principal of topics.yaml, so every service can authenticate
        (a principal added to topics.yaml after the storage was formatted gets one now). What it did."""
        if not self.secured:
            return ""
        known = self.passwords()
        new = {name: secrets.token_urlsafe(24) for name in self._principals() if name not in known}
        if not new:
            return ""
        admin = self._admin()
        for name, password in new.items():
            admin.set_password(name, password)
        self._write_passwords({**known, **new})
        return f"; SCRAM users added: {', '.join(sorted(new))}"

    def _convert_to_secured(self) -> str:
        """Data formatted by a PLAINTEXT broker (an earlier default), or whose credentials file is gone:
        start it once as PLAINTEXT on loopback, make every principal's SCRAM user through the admin API
        (no authorizer yet, so no credentials needed), stop it; the secured start follows. Topics,
        their records and consumer offsets stay."""
        plain = LocalKafka(self.settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT",
                                                            "kafka_sasl_mechanism": None}))
        plain._write_config()
        plain._start()
        try:
            passwords = {name: secrets.token_urlsafe(24) for name in self._principals()}
            admin = self._admin(plain.settings)
            for name, password in passwords.items():
                admin.set_password(name, password)
            deadline = time.monotonic() + 60
            while not set(passwords) <= admin.users():
                if time.monotonic() > deadline:
                    raise DevError(f"kafka: the SCRAM users did not appear within 60s; see {self.logs / 'server.log'}")
                time.sleep(0.2)
            del admin  # its client's threads go before the broker does (else they log refused connections)
        finally:
            plain.down()
        self._write_passwords(passwords)  # only once every user exists: an interrupted conversion runs again
        return f"converted the PLAINTEXT data in {self.data} to the secured broker (SCRAM users, ACLs); "

    def _check_running_mode(self) -> None:
        """A broker that runs as the other mode (e.g. PLAINTEXT, started by an earlier version) would refuse
        or confuse every client: say what to do instead of timing out."""
        try:
            config = self.config.read_text()
        except FileNotFoundError:
            return
        running_secured = "SASL_PLAINTEXT" in next(
            (line for line in config.splitlines() if line.startswith("listener.security.protocol.map=")), "")
        if running_secured == self.secured:
            return
        want = "secured (SASL_PLAINTEXT)" if self.secured else "PLAINTEXT"
        have = "secured (SASL_PLAINTEXT)" if running_secured else "PLAINTEXT"
        raise DevError(
            f"the local broker (pid {self.pid()}) runs {have} but the settings ask for {want} "
            f"(MUSTER_KAFKA_SECURITY_PROTOCOL): run `muster dev down`, then `muster dev up` "
            f"({'converts its data in place' if self.secured else 'restarts it on the same data'})"
        )

    def _security_config(self) -> str:
        if not self.secured:
            return (f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}\n"
                    f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}\n"
                    "inter.broker.listener.name=PLAINTEXT\n"
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n")
        node = self.passwords()[NODE]
        return Template((DEPLOY / "security.properties.template").read_text()).substitute(
            host=self.host, port=self.port, controller_port=self.controller_port,
            node_password=_jaas_quote(node), super_user=SUPER_USER,
        )

    def _scram_arguments(self) -> list[str]:
        """`kafka-storage format --add-scram` for every principal: the users exist before the broker
        first starts, so the admin can authenticate to apply ACLs (no unauthenticated window)."""
        if not self.secured:
            return []
        arguments = []
        for name, password in self.passwords().items():
            arguments += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return arguments

    # --- internals ------------------------------------------------------------------------
    def _write_config(self) -> None:
        template = Template((DEPLOY / "server.properties.template").read_text())
        self.config.write_text(
            template.substitute(
                host=self.host, port=self.port, controller_port=self.controller_port, log_dirs=self.data,
                listeners=self._security_config(),
            )
        )
        self.config.chmod(0o600)  # the broker's own password is in it

    def _formatted(self) -> bool:
        return (self.data / "meta.properties").exists()

    def _format(self) -> None:
        if self._formatted():
            return
        # A Kafka cluster id is a url-safe base64 UUID; it may begin with "-", hence --cluster-id=.
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = [
            "java", "-Xmx256m", f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.logs}", "-cp", f"{self.libs}/*", "kafka.tools.StorageTool",
            "format", f"--cluster-id={cid}", "-c", str(self.config), "--ignore-formatted",
            *self._scram_arguments(),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise DevError("kafka storage format failed: " + (result.stderr or result.stdout).strip()[-300:])
