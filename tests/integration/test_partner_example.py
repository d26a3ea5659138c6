"""The partner's guide's example consumer (Node.js, examples/partner-consumer), built from the
published contract alone, against the real broker: it finds the fire brigade's live topic in
asyncapi.yaml, handles each escalation once, skips what it cannot know, rejects what breaks the
contract, and never sees an exercise."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid

import orjson
import pytest

from services.shared.codec import encode
from services.shared.kafka import make_producer
from services.shared.settings import REPO_ROOT
from tests import factories as f

pytestmark = [pytest.mark.kafka]

EXAMPLE = REPO_ROOT / "examples" / "partner-consumer"


async def _produce(settings, records: list[tuple[str, bytes, bytes, list]]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _run_example(settings, stop_after: int, unique: str) -> list[dict]:
    node = shutil.which("node")
    assert node, "Node.js is missing: run deploy/scripts/ensure-tools.sh (make test does)"
    assert (EXAMPLE / "node_modules" / "kafkajs").is_dir(), "run deploy/scripts/ensure-tools.sh (npm ci of the example)"
    env = {
        **os.environ, "MUSTER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "MUSTER_TOPIC_PREFIX": settings.topic_prefix,
        "MUSTER_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
        "AGENCY": "fire", "MODE": "live", "GROUP_ID": f"{settings.topic_prefix}partner-fire.responder-{unique}", "STOP_AFTER": str(stop_after),
        "CONTRACT_DIR": str(REPO_ROOT),
    }
    if settings.kafka_sasl:  # a secured broker: the same credentials the fixtures use
        username, password = settings.kafka_credentials()
        env |= {"MUSTER_KAFKA_SASL_MECHANISM": settings.kafka_sasl,
                "MUSTER_KAFKA_SASL_USERNAME": username or "", "MUSTER_KAFKA_SASL_PASSWORD": password or ""}
    if settings.kafka_ssl_cafile:
        env["MUSTER_KAFKA_SSL_CAFILE"] = str(settings.kafka_ssl_cafile)
    process = await asyncio.create_subprocess_exec(
        node, "consumer.js", cwd=EXAMPLE, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        raise AssertionError(f"the example consumer did not finish: {stdout.decode()} {stderr.decode()}") from None
    assert process.returncode == 0, stderr.decode()
    return [json.loads(line) for line in stdout.decode().splitlines()]


async def test_the_example_consumer_reads_the_fire_topic_from_the_contract_alone(own_topics, unique):
    settings, catalog = own_topics
    fire, fire_exercise = catalog.escalation_topic("fire", exercise=False), catalog.escalation_topic("fire", exercise=True)
    incident = uuid.uuid4()
    raised, stood_down = encode(f.raised(incident)), encode(f.stood_down(incident))
    exercise = encode(f.raised(uuid.uuid4(), mode="exercise"))
    future = orjson.loads(raised.value) | {"schema_version": 99, "new_shape": True}
    future_headers = [(k, b"99" if k == "schema_version" else v) for k, v in raised.headers]
    broken = orjson.loads(raised.value)
    del broken["level"]
    key = str(incident).encode()
    await _produce(settings, [
        (fire_exercise, exercise.key, exercise.value, exercise.headers),  # another topic: never read
        (fire, raised.key, raised.value, raised.headers),
        (fire, raised.key, raised.value, raised.headers),  # a replay: the same event_id
        (fire, key, orjson.dumps(future), future_headers),  # a version it was not built for
        (fire, key, orjson.dumps(broken | {"event_id": str(uuid.uuid4())}), raised.headers),  # breaks the contract
        (fire, stood_down.key, stood_down.value, stood_down.headers),
    ])

    lines = await _run_example(settings, stop_after=5, unique=unique)

    assert [line["action"] for line in lines] == ["handled", "duplicate", "skipped", "rejected", "handled"]
    first, duplicate, skipped, rejected, last = lines
    assert first == {
        "action": "handled", "event_id": str(f.raised(incident).event_id), "event_type": "EscalationRaised",
        "schema_version": 1, "incident_id": str(incident), "mode": "live", "classification": "OFFICIAL", "level": 3,
        "levels": None, "agencies": ["council", "fire", "police", "ambulance"], "topic": fire,
        "partition": first["partition"], "offset": first["offset"],
    }
    assert duplicate["event_id"] == first["event_id"]
    assert skipped["reason"] == "unknown event_type or schema_version" and skipped["schema_version"] == "99"
    assert "level" in rejected["reason"]
    assert (last["event_type"], last["levels"], last["incident_id"]) == ("EscalationStoodDown", [3], str(incident))
    assert {line["topic"] for line in lines} == {fire}
    assert [int(line["offset"]) for line in lines] == sorted(int(line["offset"]) for line in lines)
