"""asyncapi.yaml is what topics.yaml and the models say, covers every topic and event, and the
AsyncAPI project's own CLI finds it valid."""

from __future__ import annotations

import os
import subprocess

import yaml

from services.cli import contract_levels
from services.shared import asyncapi
from services.shared.schemas import SCHEMAS_DIR, contract_models
from services.shared.settings import REPO_ROOT
from services.shared.topics import load_topics_file

CLI = REPO_ROOT / "deploy" / "tools" / "asyncapi" / "node_modules" / ".bin" / "asyncapi"


def _spec() -> dict:
    return yaml.safe_load(asyncapi.ASYNCAPI_FILE.read_text())


def test_committed_asyncapi_matches_topics_and_models():
    assert asyncapi.ASYNCAPI_FILE.read_text() == asyncapi.expected(contract_levels()), (
        "asyncapi.yaml drifted: run `muster contract export` and commit it"
    )


def test_every_topic_with_events_is_a_channel_with_its_kafka_binding():
    spec, topics = _spec(), load_topics_file(REPO_ROOT / "topics.yaml")
    by_address = {c["address"]: c for c in spec["channels"].values()}
    for topic in topics.topics:
        if topic.internal:  # a processor's own topic: no contract events, not a channel
            assert topic.name not in by_address and not topic.event_types
            continue
        channel = by_address[topic.name]
        binding = channel["bindings"]["kafka"]
        assert binding["partitions"] == topic.partitions
        assert binding["topicConfiguration"]["cleanup.policy"] == topic.cleanup_policy.split(",")
        assert binding["topicConfiguration"]["retention.ms"] == topic.retention_ms
        carried = {m.split(".v")[0] for m in channel["messages"]}
        assert carried == set(topic.event_types)


def test_every_event_version_is_a_message_with_payload_headers_key_and_correlation_id():
    messages = _spec()["components"]["messages"]
    for name, version, _ in contract_models():
        message = messages[f"{name}.v{version}"]
        assert (REPO_ROOT / message["payload"]["$ref"]).is_file()
        assert (REPO_ROOT / message["bindings"]["kafka"]["key"]["$ref"]).is_file()
        assert message["headers"]["properties"]["event_type"]["const"] == name
        assert message["headers"]["properties"]["schema_version"]["const"] == str(version)
        assert message["correlationId"]["location"].startswith("$message.payload#/")
    referenced = {m["payload"]["$ref"].removeprefix("./schemas/") for m in messages.values()}
    event_files = {p.name for p in SCHEMAS_DIR.glob("*.json")} - {"index.json", "Headers.json"}
    assert referenced == {f for f in event_files if not f.startswith("Key.")}


def test_operations_say_what_intake_sends_and_what_a_fire_service_receives():
    operations = _spec()["operations"]
    sends = operations["intake.send.incidents"]
    assert sends["action"] == "send" and sends["channel"]["$ref"] == "#/channels/incidents"
    assert "#/channels/incidents/messages/IncidentReported.v1" in [m["$ref"] for m in sends["messages"]]
    fire = {op["channel"]["$ref"] for op in operations.values() if op["x-muster-role"] == "fire" and op["action"] == "receive"}
    assert fire == {"#/channels/escalations.fire", "#/channels/escalations.exercise.fire"}
    partner = operations["partner-systems.send.incidents"]
    assert all(m["$ref"].endswith(".input") for m in partner["messages"])


def test_the_asyncapi_cli_validates_the_document():
    assert CLI.exists(), "the AsyncAPI CLI is not installed: run deploy/scripts/ensure-tools.sh (make test does)"
    env = {**os.environ, "SUPPRESS_NO_CONFIG_WARNING": "1",
           "ASYNCAPI_METRICS_CONFIG_PATH": str(CLI.parents[1] / ".analytics.json")}
    run = subprocess.run([str(CLI), "validate", "--fail-severity=warn", str(asyncapi.ASYNCAPI_FILE)],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is valid" in run.stdout + run.stderr
