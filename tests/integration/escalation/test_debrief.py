"""`muster exercise debrief` reads the real event log (Kafka) and writes a table and a PNG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.shared import codec
from services.shared.kafka import make_producer
from tests.unit.escalation.test_golden import EXERCISE, chain

pytestmark = [pytest.mark.kafka]


async def test_the_debrief_of_an_exercise_comes_from_the_event_log(own_topics, tmp_path):
    settings, catalog = own_topics
    facts, c = chain("poplar-fire-exercise")
    live, _ = chain("poplar-fire")
    producer = make_producer(settings)
    await producer.start()
    try:
        for event in (*facts, *live):
            enc = codec.encode(event)
            await producer.send(catalog.name("incidents"), enc.value, key=enc.key, headers=enc.headers)
        for d in c.deliveries:
            if d.agency is None:
                enc = codec.encode(d.event)
                await producer.send(catalog.escalation_topic(None, mode="exercise"), enc.value, key=enc.key,
                                    headers=enc.headers)
        await producer.flush()
    finally:
        await producer.stop()
    env = {**os.environ, "MUSTER_TOPIC_PREFIX": settings.topic_prefix, "MUSTER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
    muster = Path(sys.executable).parent / "muster"
    done = subprocess.run([str(muster), "exercise", "debrief", EXERCISE, "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"# Exercise debrief: {EXERCISE}" in done.stdout
    assert "| fire | level | level 3 major incident |" in done.stdout
    assert "major incident declared by" in done.stdout and "stood down" in done.stdout
    png = next(tmp_path.glob("debrief-*.png"))
    assert png.read_bytes()[:4] == b"\x89PNG"
    missing = subprocess.run([str(muster), "exercise", "debrief", "No such drill"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 1 and "no report names exercise 'No such drill'" in missing.stderr
