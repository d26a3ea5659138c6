"""The escalation processor's one wiring point: a faust app built from Settings.

`muster run escalation` calls `run(settings)`: it validates the rules file (a bad file
stops start-up with the rule and field named), creates the internal topics, serves
/metrics and runs the faust worker until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import socket

import faust
from aiokafka.admin import NewTopic

from services.escalation import metrics
from services.escalation.agents import Escalation
from services.escalation.config import RuleSet, RulesFileError, load_rules
from services.escalation.offsets import ensure_starts
from services.shared.kafka import faust_credentials, make_admin
from services.shared.logging import configure_logging, get_logger
from services.shared.lag import LagMonitor
from services.shared.metrics import serve_metrics
from services.shared.runtime import tune_gc
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog

INTERNAL_RETENTION_MS = str(7 * 24 * 3600 * 1000)
# Decoding allocates many short-lived objects next to a large, long-lived heap of incident
# states: collecting the young generation every 50,000 allocations (not 700) and the old one
# rarely gave one worker ~15% more facts/s (bench/escalation.py). States hold no cycles.
GC_THRESHOLDS = (50_000, 20, 100)



def build(settings: Settings, rules: RuleSet | None = None) -> Escalation:
    """The faust app with its topics, tables, agents and timer; connects to nothing yet."""
    catalog = TopicCatalog.from_settings(settings)
    rules = rules or load_rules(settings.escalation_rules_file)
    app_id = settings.topic_prefix + settings.escalation_app_id
    app = faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),
        store="memory://",
        monitor=LagMonitor(metrics.CONSUMER_LAG, app_id),
        processing_guarantee="at_least_once",
        web_enabled=False,
        datadir=str(settings.home / "faust" / app_id),
        topic_replication_factor=catalog.profile.replication_factor,
        topic_partitions=catalog.spec_of("incidents").partitions,
        consumer_auto_offset_reset="earliest",
        # Static membership: a worker restarted after a crash takes over its partitions at once,
        # instead of a second rebalance when the old member's session expires mid-recovery.
        consumer_group_instance_id=settings.escalation_instance_id or f"{socket.gethostname()}-{app_id}",
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        producer_acks=-1,
        table_standby_replicas=0,
    )
    escalation = Escalation(app, settings, catalog, rules)
    escalation.wire()
    return escalation


async def ensure_internal_topics(settings: Settings, escalation: Escalation) -> None:
    """The packed, control and corroboration topics, co-partitioned with the incidents topic,
    with a committed start for the faust group on each partition (offsets.py says why)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in escalation.internal_topics() if name not in existing]
        if missing:
            await admin.create_topics([
                NewTopic(name, escalation.partitions, escalation.catalog.profile.replication_factor,
                         topic_configs={"retention.ms": INTERNAL_RETENTION_MS, **escalation.catalog.profile.configs})
                for name in missing
            ])
    finally:
        await admin.close()
    await ensure_starts(settings, escalation.app.conf.id, escalation.internal_topics(), escalation.partitions, missing)


def run(settings: Settings) -> None:
    from services.runner import RunError
    settings = settings.as_principal("escalation")  # its own Kafka principal (topics.yaml), never the admin

    configure_logging(settings.log_level, settings.log_format)
    tune_gc(GC_THRESHOLDS)
    try:
        escalation = build(settings)
    except RulesFileError as exc:
        raise RunError(str(exc)) from None
    (settings.home / "faust").mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_internal_topics(settings, escalation))
    app = escalation.app
    serve_metrics(settings.escalation_metrics_port, ready=lambda: app.started and not app.rebalancing)
    get_logger("muster.escalation").info(
        "escalation.start", app_id=escalation.app.conf.id, rule_set_version=escalation.rules.version,
        metrics_port=settings.escalation_metrics_port,
    )
    worker = faust.Worker(escalation.app, loop=loop, loglevel=settings.log_level, quiet=True, override_logging=False)
    worker.spinner = None  # a terminal spinner writes escape codes into the JSON log stream
    worker.execute_from_commandline()
