"""A real escalation worker (`muster run escalation` as a subprocess) and a tap on its topics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from aiokafka import TopicPartition

from services.shared import codec
from services.shared.kafka import make_consumer
from services.shared.settings import REPO_ROOT, Settings
from services.shared.topics import TopicCatalog
from services.shared.watchdog import EXIT_STALLED
from tests.support import free_port, wait_until

DEFAULT_RULES = REPO_ROOT / "services" / "escalation" / "rules.yaml"


def write_test_rules(path: Path, deadline_seconds: float) -> Path:
    """The shipped rules with short acknowledgement deadlines that climb to level 3."""
    rules = yaml.safe_load(DEFAULT_RULES.read_text())
    rules["version"] = "test-short-deadlines"
    rules["acknowledgement"] = {"deadline_seconds": {5: deadline_seconds, 4: deadline_seconds}, "climb_limit": 3}
    path.write_text(yaml.safe_dump(rules))
    return path


@dataclass
class Worker:
    settings: Settings
    rules_file: Path
    log_path: Path
    app_id: str = "muster-escalation"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # more MUSTER_* settings for this worker
    stalls: int = 0  # times its progress watchdog stopped it (and `tend` started it again)

    @property
    def changelog(self) -> str:
        return f"{self.settings.topic_prefix}{self.app_id}-incident-state-changelog"

    def start(self) -> None:
        env = {
            **os.environ,
            "MUSTER_TOPIC_PREFIX": self.settings.topic_prefix,
            "MUSTER_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "MUSTER_ESCALATION_RULES_FILE": str(self.rules_file),
            "MUSTER_ESCALATION_METRICS_PORT": str(self.port),
            "MUSTER_ESCALATION_APP_ID": self.app_id,
            "MUSTER_ESCALATION_TICK_SECONDS": "0.2",
            "MUSTER_LOG_FORMAT": "json",
            **self.env,
        }
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "escalation"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True)

    async def metric(self, name: str, **labels: str) -> float:
        async with httpx.AsyncClient() as client:
            try:
                text = (await client.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2)).text
            except httpx.HTTPError:
                return -1.0
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    async def wait_running(self, timeout: float = 90) -> None:
        async def up() -> bool:
            assert self.proc and self.proc.poll() is None, f"worker exited; see {self.log_path}"
            return await self.metric("muster_escalation_events_total", input="incidents") >= 0
        await wait_until(up, timeout, interval=0.3, what="escalation worker /metrics")

    async def wait_ready(self, timeout: float = 90) -> None:
        """Until /readyz answers 200: the worker has its partitions and its tables are recovered."""
        async def ready() -> bool:
            assert self.proc and self.proc.poll() is None, f"worker exited; see {self.log_path}"
            async with httpx.AsyncClient() as client:
                try:
                    return (await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)).status_code == 200
                except httpx.HTTPError:
                    return False
        await wait_until(ready, timeout, interval=0.2, what="escalation worker /readyz")

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def tend(self) -> bool:
        """What a supervisor does for its progress watchdog: a worker that exited with
        EXIT_STALLED is started again (True when it was)."""
        if self.proc is None or self.proc.poll() != EXIT_STALLED:
            return False
        self.stalls += 1
        self.start()
        return True

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@dataclass
class Record:
    topic: str
    partition: int
    key: bytes | None
    value: dict
    tombstone: bool = False


class Tap:
    """Reads topics from the beginning in the background; tests look at `records`."""

    def __init__(self, settings: Settings, topics: dict[str, int]) -> None:
        self.settings, self.topics = settings, topics
        self.records: list[Record] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> "Tap":
        self.consumer = make_consumer(self.settings, group_id=None, fetch_max_wait_ms=50)
        await self.consumer.start()
        partitions = [TopicPartition(topic, p) for topic, n in self.topics.items() for p in range(n)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for tp, messages in batch.items():
                for m in messages:
                    self.records.append(Record(tp.topic, tp.partition, m.key, json.loads(m.value) if m.value else {},
                                               m.value is None))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()

    def on(self, topic: str, incident_id=None, event_type: str | None = None) -> list[dict]:
        return [
            r.value for r in self.records
            if r.topic == topic
            and (incident_id is None or r.value.get("incident_id") == str(incident_id))
            and (event_type is None or r.value.get("event_type") == event_type)
        ]

    def state_of(self, changelog: str, incident_id) -> dict | None:
        """The latest state the worker recorded for an incident (its table's changelog)."""
        found = [r.value for r in self.records if r.topic == changelog and r.key == str(incident_id).encode()]
        return found[-1] if found else None


def tapped(catalog: TopicCatalog, *changelogs: str) -> dict[str, int]:
    """Every escalation topic, the dead-letter topic and the worker's changelogs, with partitions."""
    counts = {catalog.name_of(t): t.partitions for t in catalog}
    wanted = [*escalation_topics(catalog), catalog.name("deadletter")]
    return {**{t: counts[t] for t in wanted}, **{c: catalog.spec_of("incidents").partitions for c in changelogs}}


def escalation_topics(catalog: TopicCatalog) -> list[str]:
    names = []
    for mode in ("live", "exercise", "test"):
        names.append(catalog.escalation_topic(None, mode=mode))
        names += [catalog.escalation_topic(a, mode=mode) for a in catalog.agencies()]
    return names


async def send(producer, catalog: TopicCatalog, event, partition: int | None = None):
    enc = codec.encode(event)
    return await producer.send_and_wait(catalog.name("incidents"), enc.value, key=enc.key, headers=enc.headers,
                                        partition=partition)
