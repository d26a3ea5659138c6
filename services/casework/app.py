"""The one wiring point of the casework processor: settings in, a faust app out.

`run(settings)` is what `muster run casework` calls: the shared processor runtime
(services/shared/processor.py) serves metrics on MUSTER_CASEWORK_METRICS_PORT, then runs a
faust worker until SIGTERM/SIGINT.
"""

from __future__ import annotations

from services.casework import metrics
from services.casework.agents import Casework
from services.casework.config import CaseworkConfigError, load_config
from services.casework.rekey import Rekey
from services.shared import processor
from services.shared.first_reports import FirstReports
from services.shared.settings import Settings
from services.shared.stage import BatchStage
from services.shared.tables import PinnedTable
from services.shared.topics import TopicCatalog


def build(settings: Settings) -> Casework:
    """The faust app with its topics, table, agent, stage and clock; connects to nothing yet."""
    config = load_config(settings.casework_config_file)
    catalog = TopicCatalog.from_settings(settings)
    replication = catalog.replication_factor(catalog.spec_of("casework.by_case"))
    partitions = catalog.spec_of("casework.by_case").partitions  # and the table's (co-partitioned)
    app = processor.make_app(settings, "casework", partitions=partitions, replication=replication,
                             lag=metrics.CONSUMER_LAG, waiting=metrics.PROGRESS_WAITING)
    app_id = app.conf.id

    def raw_topic(name: str, **kwargs):
        return app.topic(name, key_serializer="raw", value_serializer="raw", **kwargs)

    table = app.tables.add(PinnedTable(
        app, name="cases", beacon=app.tables.beacon, partitions=partitions, key_type=str, value_type=bytes,
        help="Case key (mode|kind|subject) -> the case's entries, episode, clocks and route.",
    ))
    casework = Casework(
        app=app, settings=settings, config=config, incidents_topic=catalog.name("incidents"),
        rekey_group=f"{app_id}-rekey",
        by_case=raw_topic(catalog.name("casework.by_case"), internal=True, partitions=partitions, replicas=replication),
        alerts=raw_topic(catalog.name("casework.alerts")), cases_topic=raw_topic(catalog.name("casework.cases")),
        deadletter_topic=catalog.name("deadletter"), table=table, partitions=partitions, catalog=catalog,
    )
    rekey = Rekey(casework.by_case.get_topic_name(), partitions, config,
                  FirstReports.on_topic(settings, casework.incidents_topic))
    processor.add_stage(app, BatchStage(settings, casework.incidents_topic, casework.rekey_group, rekey, casework.sink,
                                        batch_max=config.processing.batch_max, within_ms=config.processing.batch_within_ms))
    app.agent(casework.by_case, name="casework-cases", concurrency=1)(casework.cases)
    app.timer(float(config.processing.tick))(casework.tick)
    return casework


def run(settings: Settings) -> None:
    settings = settings.as_principal("casework")  # its own Kafka principal (topics.yaml), never the admin
    processor.run(settings, "casework", lambda: build(settings), metrics_port=settings.casework_metrics_port,
                  config_errors=(CaseworkConfigError,))
