"""kill -9 of the worker with deadlines pending and events in flight; the restarted worker
produces every escalation that fell due, and no (incident, level) gets two event_ids."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest

from services.shared import events as ev
from services.shared.events import derived_event_id, utcnow
from services.shared.kafka import make_producer
from tests.factories import BOW_EAST, fact, reported
from tests.integration.escalation.support import Tap, Worker, send, tapped, write_test_rules
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DEADLINE = 3.0

# Fires without coordinates: each escalates on its own (fires close together are one emergency).
UNPLACED = ev.Location(ward_code=BOW_EAST)


def severe(at) -> ev.IncidentReported:
    return reported(occurred_at=at, recorded_at=at, category="other", severity=4)


async def test_kill_9_with_deadlines_pending_loses_no_escalation_and_doubles_no_id(own_topics, tmp_path):
    settings, catalog = own_topics
    rules = write_test_rules(tmp_path / "rules.yaml", DEADLINE)
    worker = Worker(settings, rules, tmp_path / "worker.log")
    producer = make_producer(settings)
    await producer.start()
    worker.start()
    tap = None
    try:
        await worker.wait_ready()  # reports sent before the worker is ready could climb past level 1 before the kill
        before = [severe(utcnow()) for _ in range(5)]
        for incident in before:
            await send(producer, catalog, incident)
        tap = await Tap(settings, tapped(catalog, worker.changelog)).start()
        everyone = catalog.escalation_topic(None, exercise=False)

        def levels(incident_id) -> set[int]:
            return {v["level"] for v in tap.on(everyone, incident_id, "EscalationRaised")}

        await wait_until(lambda: all(1 in levels(i.incident_id) for i in before), 60, what="level 1 of each")
        noted = [i.incident_id for i in before for _ in range(20)]
        in_flight = asyncio.gather(*(
            send(producer, catalog, fact(ev.NoteAdded, incident_id, utcnow(), text="note")) for incident_id in noted
        ))
        worker.kill9()
        last_note: dict[str, int] = {}
        for incident_id, meta in zip(noted, await in_flight):
            last_note[str(incident_id)] = max(last_note.get(str(incident_id), -1), meta.offset)
        during = [severe(utcnow()) for _ in range(5)]
        fires = [reported(occurred_at=utcnow(), category="fire", severity=5, location=UNPLACED) for _ in range(3)]
        for incident in (*during, *fires):
            await send(producer, catalog, incident)
        all_due = before[-1].occurred_at + timedelta(seconds=2 * DEADLINE + 1)
        await wait_until(lambda: utcnow() > all_due, 4 * DEADLINE, what="both deadlines to fall due while down")

        worker.start()
        await worker.wait_running()
        await wait_until(lambda: all(levels(i.incident_id) == {1, 2, 3} for i in (*before, *during)), 90,
                         what="every due climb after the restart")
        await wait_until(lambda: all(levels(i.incident_id) == {3} for i in fires), 30, what="the fires at level 3")
        await wait_until(  # the notes in flight at the kill were all applied, none skipped after recovery
            lambda: all((tap.state_of(worker.changelog, i) or {}).get("offset", -1) >= o for i, o in last_note.items()),
            30, what="every note in flight at the kill applied by the restarted worker")

        ids: dict[tuple[str, int], set[str]] = defaultdict(set)
        for value in tap.on(everyone, event_type="EscalationRaised"):
            ids[(value["incident_id"], value["level"])].add(value["event_id"])
        assert all(len(v) == 1 for v in ids.values()), {k: v for k, v in ids.items() if len(v) > 1}
        for (incident_id, level), (event_id,) in ids.items():
            assert event_id == str(derived_event_id(uuid.UUID(incident_id), level, "raised"))
    finally:
        worker.stop()
        if tap:
            await tap.stop()
        await producer.stop()
