"""The one runtime of the stream processors (escalation, tension): a faust app built from
Settings, the sink its stages and agents send through, and `run` (what `muster run
<processor>` calls).

- `make_app`: credentials from the Kafka settings (SASL or TLS), static group membership
  (a worker restarted after a crash takes its partitions back at once, instead of a second
  rebalance when the old member's session expires mid-recovery), the same timeouts,
  at-least-once processing (faust's commit never passes a record its agents skipped, and a
  skipped record is read again: services/shared/faust_commits.py), in-memory tables recovered from their changelogs, the
  consumer-lag monitor, and the progress watchdog (services/shared/watchdog.py) over the
  app's group and every stage added with `add_stage`.
- `FaustSink`: the narrow services.shared.stage.Sink over the app's producer and the
  service's DeadLetterSink; a dead letter that cannot be sent is logged, never raised
  (the broker is gone: faust stops the worker, not one agent).
- `run`: logging, GC tuning, the service built (a bad configuration is one StartupError
  line), its `prepare()` (topics, start offsets), /metrics with /readyz, one
  `<service>.start` line, then the faust worker until SIGTERM/SIGINT.

A processor is a class for the work with `app`, `prepare()` and `describe()`; its app.py
builds it and registers its agents, stages and timers on the app.
"""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import faust
from prometheus_client import Gauge

from services.shared import faust_commits
from services.shared.deadletter import DeadLetterSink, FaustSender, Record
from services.shared.kafka import RECORD_BATCH_BYTES, apply_topics, make_admin, topic_drift
from services.shared.lag import LagMonitor
from services.shared.logging import configure_logging, get_logger
from services.shared.metrics import serve_metrics
from services.shared.runtime import keep_memory_trimmed, tune_gc
from services.shared.settings import Settings
from services.shared.stage import BatchStage
from services.shared.startup import StartupError
from services.shared.topics import TopicCatalog
from services.shared.watchdog import Watchdog, Watched

# Decoding allocates many short-lived objects next to a large, long-lived heap of state:
# collecting the young generation every 50,000 allocations (not 700) and the old one rarely
# gave one escalation worker ~15% more facts/s (bench/escalation.py). States hold no cycles.
GC_THRESHOLDS = (50_000, 20, 100)
# Records an agent's stream holds fetched and not yet processed (faust's default is 4,096). The
# agents read packs (a pack: up to hundreds of facts), so after a rejoin, which seeks every
# partition back to its committed offset, faust prefetched thousands of packs at once: the
# escalation worker's 30 MB step at each cut of its broker link in the soaks of 2026-12-03,
# which the allocator kept. An agent handles one record at a time; 256 keep it busy.
STREAM_BUFFER_MAXSIZE = 256
# How long the group coordinator keeps a silent worker's partitions (faust's default is 60 s,
# Kafka's 45 s): past a cut of its broker link (the chaos schedule's is 10 s), short of a worker
# gone for good. Heartbeats every 2 s.
SESSION_TIMEOUT_S = 30.0


def app_id_for(settings: Settings, service: str) -> str:
    """The faust app id (consumer group, changelog and internal topic names), prefixed like every topic."""
    return settings.topic_prefix + getattr(settings, f"{service}_app_id")


def credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    options = settings.kafka_client_options()
    if settings.kafka_sasl:
        return faust.SASLCredentials(
            username=options.get("sasl_plain_username"),  # MUSTER_KAFKA_SASL_USERNAME, else its principal's
            password=options.get("sasl_plain_password"),
            mechanism=settings.kafka_sasl,
            ssl_context=options.get("ssl_context"),
        )
    if "ssl_context" in options:
        return faust.SSLCredentials(options["ssl_context"])
    return None


def make_app(settings: Settings, service: str, *, partitions: int, replication: int, lag: Gauge,
             waiting: Gauge | None = None, app_id: str | None = None) -> faust.App:
    """The faust app of one processor; connects to nothing yet."""
    faust_commits.install()  # never commit past a record the agents did not process
    app_id = app_id or app_id_for(settings, service)
    instance = getattr(settings, f"{service}_instance_id") or f"{socket.gethostname()}-{app_id}"
    datadir = settings.home / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=credentials(settings),
        store="memory://",
        monitor=LagMonitor(lag, app_id),
        processing_guarantee="at_least_once",
        web_enabled=False,
        datadir=str(datadir),
        topic_replication_factor=replication,
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=instance,
        # The session outlasts a short loss of the broker link: a 10 s session expired in a 10 s cut
        # of the escalation worker's link (the soak of 2026-12-03), and the rejoin recovered every
        # table from its changelogs before a record more was processed (16 s), then drained the
        # backlog of the whole outage: 63 s from the lift until its lag was back. A worker killed
        # and started again rejoins at once by its static instance id; only a worker that never
        # comes back holds its partitions until the session ends.
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_max_batch_size=RECORD_BATCH_BYTES,  # a partition's throughput per round trip (kafka.py)
        table_standby_replicas=0,
        stream_buffer_maxsize=STREAM_BUFFER_MAXSIZE,
    )
    watchdog = Watchdog(settings, settings.processor_stall_seconds, waiting=waiting)
    watchdog.watch(Watched(app_id, lambda: agents_assignment(app), lambda: settled(app)))
    app.service(watchdog)
    app.service(faust_commits.Reread(app, app_id, lambda: settled(app), service))  # a skipped record read again
    _WATCHDOGS[app] = watchdog
    return app


_WATCHDOGS: weakref.WeakKeyDictionary[faust.App, Watchdog] = weakref.WeakKeyDictionary()


def watchdog_of(app: faust.App) -> Watchdog:
    return _WATCHDOGS[app]


def add_stage(app: faust.App, stage: BatchStage) -> BatchStage:
    """Start `stage` with the app, its consumer group watched by the app's progress watchdog."""
    app.service(stage)
    watchdog_of(app).watch(Watched(stage.group, lambda: stage.consumer.assignment() if stage.consumer else ()))
    return stage


def agents_assignment(app: faust.App) -> set:
    """The partitions the app's agents consume and commit (its assignment less the tables' changelogs)."""
    changelogs = app.tables.changelog_topics
    return {tp for tp in app.consumer.assignment() if tp.topic not in changelogs}


def settled(app: faust.App) -> bool:
    """Started, not rebalancing, not recovering its tables: its commits can be expected to move."""
    return bool(app.started and not app.rebalancing and not getattr(app, "in_recovery", False))


async def ensure_app_topics(settings: Settings, catalog: TopicCatalog, service: str) -> list[str]:
    """Create the processor's internal topics that are missing, as topics.yaml declares them,
    before faust would create them its own way; returns what changed. Raising partitions or
    configs of existing ones is `muster topics apply`'s (the admin's), never a worker's."""
    admin = make_admin(settings)
    await admin.start()
    try:
        missing = (await topic_drift(admin, catalog, [t.id for t in catalog.of_app(service)])).missing
        return await apply_topics(admin, catalog, [catalog.id_of(name) for name in missing]) if missing else []
    finally:
        await admin.close()


def changelog_unknown(app: faust.App, topic: str) -> bool:
    """The worker's group metadata does not know `topic` yet (None or 0 partitions): a topic
    created just before the worker joined its group, which the broker's metadata did not yet
    show (seen in a chaos run's first seconds). faust then refuses every write to a table on
    that changelog (PartitionsMismatch, "has 0 partitions") until the metadata is refreshed,
    by default five minutes later."""
    return not app.consumer.topic_partitions(topic)


async def refresh_metadata(app: faust.App) -> None:
    """Ask the worker's consumer for fresh metadata now: a topic it did not know becomes known
    (and the group rebalances onto it). On the consumer's own thread, as faust calls it."""
    try:
        thread = app.consumer._thread  # noqa: SLF001 - faust 0.15's consumer thread; no public call for this
        client = thread._ensure_consumer()._client  # noqa: SLF001 - the aiokafka consumer's client
        await thread.call_thread(client.force_metadata_update)
    except Exception as exc:  # noqa: BLE001 - the periodic refresh (metadata_max_age_ms) comes anyway
        get_logger("muster.processor").warning("metadata.refresh_failed", error_class=type(exc).__name__,
                                                reason=str(exc)[:200])


class FaustSink:
    """services.shared.stage.Sink over a faust app's producer and a service's dead letters."""

    def __init__(self, app: faust.App, deadletters: DeadLetterSink) -> None:
        self.app, self.deadletters = app, deadletters

    async def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int | None = None,
                   headers: Any = None) -> asyncio.Future:
        return await self.app.producer.send(topic, key, value, partition, None, headers)

    async def dead_letter(self, record: Record, error: BaseException | str, input_name: str) -> None:
        try:
            await self.deadletters.send(record, error, input_name)
        except Exception:  # noqa: BLE001 - the broker is gone; faust will stop the worker, not this agent
            get_logger("muster.deadletter").exception(
                "dead_letter.failed", service=self.deadletters.service, topic=record.topic,
                partition=record.partition, offset=record.offset)


def sink_for(app: faust.App, service: str, deadletter_topic: str, counter: Any) -> FaustSink:
    """The sink of one processor: its dead letters counted on `counter` (dead_letters_counter)."""
    return FaustSink(app, DeadLetterSink(FaustSender(app), deadletter_topic, service=service, counter=counter))


class Processor(Protocol):
    app: faust.App

    async def prepare(self) -> None:
        """What must exist before the worker starts (topics, start offsets)."""

    def describe(self) -> dict[str, Any]:
        """Fields of the start-up log line."""


def run(settings: Settings, service: str, build: Callable[[], Processor], *, metrics_port: int,
        config_errors: tuple[type[Exception], ...] = ()) -> None:
    """Run one processor in the foreground until SIGTERM/SIGINT."""
    configure_logging(settings.log_level, settings.log_format)
    tune_gc(GC_THRESHOLDS)
    keep_memory_trimmed()  # what a recovery or a backlog freed leaves the resident size
    try:
        processor = build()
    except config_errors as exc:
        raise StartupError(str(exc)) from None
    app = processor.app
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(processor.prepare())
    serve_metrics(metrics_port, ready=lambda: app.started and not app.rebalancing)
    get_logger(f"muster.{service}").info(f"{service}.start", app_id=app.conf.id, metrics_port=metrics_port,
                                          **processor.describe())
    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level, quiet=True, override_logging=False)
    worker.spinner = None  # a terminal spinner writes escape codes into the JSON log stream
    worker.execute_from_commandline()
