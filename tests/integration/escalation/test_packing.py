"""The pack pre-stage and the batch agent against the real broker and a real worker process."""

from __future__ import annotations

import orjson
import pytest

from services.shared import codec
from services.shared import events as ev
from services.shared.events import utcnow
from tests.factories import BOW_EAST, fact, reported
from tests.integration.escalation.support import send
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Fires without coordinates: each escalates on its own (fires close together are one emergency).
UNPLACED = ev.Location(ward_code=BOW_EAST)


def packed_topic(worker) -> str:
    return f"{worker.settings.topic_prefix}{worker.app_id}-packed"


async def test_a_pack_replayed_after_a_crash_does_not_take_the_state_back(producer, topics, tap, worker):
    """A pack sent again (the pre-stage died between sending it and committing) is skipped by source offset."""
    report = reported(occurred_at=utcnow(), category="noise", severity=2)
    first = await send(producer, topics, report)
    update = await send(producer, topics, fact(ev.IncidentUpdated, report.incident_id, utcnow(), severity=3))
    changelog = worker.changelog
    await wait_until(lambda: (tap.state_of(changelog, report.incident_id) or {}).get("offset") == update.offset, 30,
                     what="the update in the state")

    replay = orjson.dumps([[first.offset, str(report.incident_id), codec.encode(report).value.decode()]])
    await producer.send_and_wait(packed_topic(worker), replay, key=b"replay", partition=first.partition)
    note = await send(producer, topics, fact(ev.NoteAdded, report.incident_id, utcnow(), text="after the replay"))

    await wait_until(lambda: (tap.state_of(changelog, report.incident_id) or {}).get("offset") == note.offset, 30,
                     what="the note after the replayed pack")
    assert tap.state_of(changelog, report.incident_id)["severity"] == 3  # not the replayed report's 2


async def test_bytes_that_are_not_text_are_dead_lettered_by_the_pack_stage_with_their_source(producer, topics, tap):
    incidents = topics.name("incidents")
    bad = await producer.send_and_wait(incidents, b"\xff\xfe\x00", key=b"binary", partition=1)
    later = reported(occurred_at=utcnow(), category="fire", severity=5, location=UNPLACED)
    await send(producer, topics, later, partition=1)
    deadletter = topics.name("deadletter")

    def letter() -> dict | None:
        found = [v for v in tap.on(deadletter) if v["source_topic"] == incidents and v["source_offset"] == bad.offset
                 and v["source_partition"] == 1]
        return found[0] if found else None

    await wait_until(letter, 30, what="the dead letter of the binary record")
    assert letter()["error_class"] == "PoisonRecord" and "UTF-8" in letter()["error"]
    await wait_until(lambda: tap.on(topics.escalation_topic("fire", exercise=False), later.incident_id), 30,
                     what="the record after it to escalate")


async def test_an_unreadable_pack_is_dead_lettered_and_the_packed_partition_keeps_flowing(producer, topics, tap, worker):
    junk = await producer.send_and_wait(packed_topic(worker), b"not a pack", key=b"junk", partition=0)
    later = reported(occurred_at=utcnow(), category="fire", severity=5, location=UNPLACED)
    await send(producer, topics, later, partition=0)
    deadletter = topics.name("deadletter")
    await wait_until(lambda: [v for v in tap.on(deadletter) if v["source_topic"] == packed_topic(worker)
                              and v["source_offset"] == junk.offset], 30, what="the dead letter of the junk pack")
    await wait_until(lambda: tap.on(topics.escalation_topic("fire", exercise=False), later.incident_id), 30,
                     what="the record after it to escalate")
