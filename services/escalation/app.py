"""The escalation processor's one wiring point: a faust app built from Settings.

`muster run escalation` calls `run(settings)`: the shared processor runtime
(services/shared/processor.py) validates the rules file (a bad file stops start-up with the
rule and field named), creates the internal topics, serves /metrics and runs the faust
worker until SIGTERM/SIGINT.
"""

from __future__ import annotations

from services.escalation import metrics
from services.escalation.agents import Escalation
from services.escalation.config import RuleSet, load_rules
from services.escalation.packer import BATCH_MAX, CONSUMER_OPTIONS, WITHIN_MS, Packer
from services.shared import processor
from services.shared.settings import Settings
from services.shared.stage import BatchStage
from services.shared.yamlfile import ConfigFileError
from services.shared.topics import TopicCatalog


def build(settings: Settings, rules: RuleSet | None = None) -> Escalation:
    """The faust app with its topics, tables, agents, stage and timer; connects to nothing yet."""
    catalog = TopicCatalog.from_settings(settings)
    rules = rules or load_rules(settings.escalation_rules_file)
    app = processor.make_app(settings, "escalation", partitions=catalog.spec_of("incidents").partitions,
                             replication=catalog.profile.replication_factor, lag=metrics.CONSUMER_LAG,
                             waiting=metrics.PROGRESS_WAITING)
    escalation = Escalation(app, settings, catalog, rules)
    processor.add_stage(app, BatchStage(settings, escalation.incidents_name, escalation.pack_group, Packer(escalation.packed_name),
                                        escalation.sink, batch_max=BATCH_MAX, within_ms=WITHIN_MS * 5,
                                        consumer_options=CONSUMER_OPTIONS))
    app.agent(escalation.inputs, name="incidents", concurrency=1)(escalation.incident_agent)
    app.agent(escalation.candidates, name="corroboration", concurrency=1)(escalation.candidate_agent)
    app.timer(settings.escalation_tick_seconds, name="deadlines")(escalation.tick)
    app.on_partitions_assigned.connect(escalation.on_rebalance)
    app.on_partitions_revoked.connect(escalation.on_rebalance)
    return escalation


def run(settings: Settings) -> None:
    settings = settings.as_principal("escalation")  # its own Kafka principal (topics.yaml), never the admin
    processor.run(settings, "escalation", lambda: build(settings), metrics_port=settings.escalation_metrics_port,
                  config_errors=(ConfigFileError,))
