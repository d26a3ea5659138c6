"""The one wiring point of the tension processor: settings in, a faust app out.

`run(settings)` is what `muster run tension` calls: metrics on
MUSTER_TENSION_METRICS_PORT, then a faust worker until SIGTERM/SIGINT.
"""

from __future__ import annotations

import faust

from services.shared.lag import LagMonitor
from services.shared.logging import configure_logging, get_logger, logging_config
from services.shared.metrics import serve_metrics
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from services.shared.wards import load_wards
from services.tension import metrics
from services.tension.agents import attach
from services.tension.wiring import Wiring
from services.tension.config import load_config
from services.tension.tables import make_tables


def app_id_for(settings: Settings) -> str:
    """The faust app id (consumer group, changelog and internal topic names): prefixed like every topic."""
    return f"{settings.topic_prefix}muster-tension"


def _credentials(settings: Settings):  # noqa: ANN202 - faust credentials or None
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=settings.kafka_client_options().get("ssl_context"),
        )
    if settings.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(settings.kafka_client_options()["ssl_context"])
    return None


def rekey_group_for(app_id: str) -> str:
    """The consumer group of the re-keying stage (it reads the incidents topic in batches)."""
    return f"{app_id}-rekey"


def build(settings: Settings, *, app_id: str | None = None) -> Wiring:
    config = load_config(settings.tension_config_file)
    catalog = TopicCatalog.from_settings(settings)
    app_id = app_id or app_id_for(settings)
    replication = catalog.replication_factor(catalog.spec_of("tension.alerts"))
    partitions = config.processing.partitions
    datadir = settings.home / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(settings),
        store="memory://",
        web_enabled=False,
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=replication,
        topic_partitions=partitions,
        table_standby_replicas=0,
        producer_acks=-1,
        # A worker killed with SIGKILL leaves the group after this; its replacement waits for it.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        monitor=LagMonitor(metrics.CONSUMER_LAG, app_id),
    )

    def raw_topic(name: str, **kwargs):  # noqa: ANN202 - faust TopicT
        return app.topic(name, key_serializer="raw", value_serializer="raw", **kwargs)

    wiring = Wiring(
        app=app,
        settings=settings,
        config=config,
        incidents_topic=catalog.name("incidents"),
        calendar_topic=catalog.name("tension.calendar"),
        rekey_group=rekey_group_for(app_id),
        by_ward=raw_topic(f"{app_id}-by-ward", internal=True, partitions=partitions, replicas=replication),
        alerts=raw_topic(catalog.name("tension.alerts")),
        exercise_alerts=raw_topic(catalog.name("tension.alerts.exercise")),
        deadletter_topic=catalog.name("deadletter"),
        tables=make_tables(app, partitions),
        ward_names={code: ward.name for code, ward in load_wards(settings.wards_file).items()},
        declared_sources=catalog.spec_of("incidents").partitions,
        declared_calendar=catalog.spec_of("tension.calendar").partitions,
    )
    attach(wiring)
    return wiring


def run(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    wiring = build(settings)
    app = wiring.app
    serve_metrics(settings.tension_metrics_port, ready=lambda: app.started and not app.rebalancing)
    get_logger("muster.tension").info("tension_starting", app_id=wiring.app.conf.id,
                                      metrics_port=settings.tension_metrics_port)
    worker = faust.Worker(wiring.app, loglevel=settings.log_level.lower(), quiet=True,
                          logging_config=logging_config(settings.log_level, settings.log_format))
    worker.execute_from_commandline()
