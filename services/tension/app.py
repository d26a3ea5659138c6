"""The one wiring point of the tension processor: settings in, a faust app out.

`run(settings)` is what `muster run tension` calls: the shared processor runtime
(services/shared/processor.py) serves metrics on MUSTER_TENSION_METRICS_PORT, then runs a
faust worker until SIGTERM/SIGINT.
"""

from __future__ import annotations

from services.shared import processor
from services.shared.kafka import committed_metadata
from services.shared.settings import Settings
from services.shared.stage import BatchStage
from services.shared.yamlfile import ConfigFileError
from services.shared.topics import TopicCatalog
from services.shared.wards import load_wards
from services.shared.first_reports import FirstReports
from services.tension import metrics
from services.tension.agents import Tension
from services.tension.config import load_config
from services.tension.rekey import Rekey
from services.tension.tables import make_tables


def app_id_for(settings: Settings) -> str:
    """The faust app id (consumer group, changelog and internal topic names): prefixed like every topic."""
    return processor.app_id_for(settings, "tension")


def rekey_group_for(app_id: str) -> str:
    """The consumer group of the re-keying stage (it reads the incidents and calendar topics in batches)."""
    return f"{app_id}-rekey"


def build(settings: Settings) -> Tension:
    """The faust app with its topics, tables, agent and stage; connects to nothing yet."""
    config = load_config(settings.tension_config_file)
    catalog = TopicCatalog.from_settings(settings)
    replication = catalog.replication_factor(catalog.spec_of("tension.by_ward"))
    partitions = catalog.spec_of("tension.by_ward").partitions  # and the tables' (co-partitioned)
    app = processor.make_app(settings, "tension", partitions=partitions, replication=replication,
                             lag=metrics.CONSUMER_LAG, waiting=metrics.PROGRESS_WAITING)

    def raw_topic(name: str, **kwargs):  # faust TopicT
        return app.topic(name, key_serializer="raw", value_serializer="raw", **kwargs)

    tension = Tension(
        app=app,
        settings=settings,
        config=config,
        incidents_topic=catalog.name("incidents"),
        rekey_group=rekey_group_for(app.conf.id),
        by_ward=raw_topic(catalog.name("tension.by_ward"), internal=True, partitions=partitions, replicas=replication),
        alerts=raw_topic(catalog.name("tension.alerts")),
        exercise_alerts=raw_topic(catalog.name("tension.alerts.exercise")),
        deadletter_topic=catalog.name("deadletter"),
        tables=make_tables(app, partitions),
        ward_names={code: ward.name for code, ward in load_wards(settings.wards_file).items()},
        declared_sources=catalog.spec_of("incidents").partitions,
        partitions=partitions,
        catalog=catalog,
    )
    calendar_topic = catalog.name("tension.calendar")
    rekey = Rekey(tension.by_ward.get_topic_name(), partitions, tension.declared_sources,
                  incidents_topic=tension.incidents_topic, calendar_topic=calendar_topic,
                  declared_calendar=catalog.spec_of("tension.calendar").partitions, config=config,
                  reports=FirstReports.on_topic(settings, tension.incidents_topic),
                  committed=lambda tps: committed_metadata(settings, tension.rekey_group, tps))
    processor.add_stage(app, BatchStage(settings, tension.incidents_topic, tension.rekey_group, rekey, tension.sink,
                                        batch_max=config.processing.batch_max,
                                        within_ms=int(config.processing.batch_within * 1000), also=(calendar_topic,)))
    app.agent(tension.by_ward, name="tension-score", concurrency=1)(tension.score)
    return tension


def run(settings: Settings) -> None:
    settings = settings.as_principal("tension")  # its own Kafka principal (topics.yaml), never the admin
    processor.run(settings, "tension", lambda: build(settings), metrics_port=settings.tension_metrics_port,
                  config_errors=(ConfigFileError,))
