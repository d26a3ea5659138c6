"""Regression (issue 17: the escalation worker's memory grew ~0.6 KB per event for good): a
finished incident is released from the table after its retention, with a tombstone on the
changelog; a kill -9 and restart recovers the same bounded table; a late fact for a
released incident raises nothing."""

from __future__ import annotations

import pytest

from services.shared import events as ev
from services.shared.events import utcnow
from services.shared.kafka import make_producer
from tests.factories import BOW_EAST, fact, reported
from tests.integration.escalation.support import Tap, Worker, send, tapped, write_test_rules
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RETENTION = 2.0
COUNT = 30

# Fires without coordinates: each escalates on its own (fires close together are one emergency).
UNPLACED = ev.Location(ward_code=BOW_EAST)


async def test_finished_incidents_are_released_tombstoned_and_stay_released_after_a_restart(own_topics, tmp_path):
    settings, catalog = own_topics
    worker = Worker(settings, write_test_rules(tmp_path / "rules.yaml", 600), tmp_path / "worker.log",
                    env={"MUSTER_ESCALATION_CLOSED_RETENTION_SECONDS": str(RETENTION)})
    producer = make_producer(settings)
    await producer.start()
    worker.start()
    tap = None
    try:
        await worker.wait_ready()
        fires = [reported(occurred_at=utcnow(), recorded_at=utcnow(), category="fire", severity=5,
                          location=UNPLACED)
                 for _ in range(COUNT)]
        still_open = reported(occurred_at=utcnow(), recorded_at=utcnow(), category="fire", severity=5,
                          location=UNPLACED)
        for incident in (*fires, still_open):
            await send(producer, catalog, incident)
        for incident in fires:
            await send(producer, catalog, fact(ev.IncidentStatusChanged, incident.incident_id, utcnow(),
                                               status="resolved"))
        tap = await Tap(settings, tapped(catalog, worker.changelog)).start()
        everyone = catalog.escalation_topic(None, exercise=False)

        async def released() -> bool:
            return await worker.metric("muster_escalation_released_total") >= COUNT

        await wait_until(released, 60, interval=0.3, what="every resolved incident released")
        assert await worker.metric("muster_escalation_states") == 1  # the open one only
        assert len(tap.on(everyone, event_type="EscalationStoodDown")) == COUNT

        def last(incident_id):
            found = [r for r in tap.records if r.topic == worker.changelog and r.key == str(incident_id).encode()]
            return found[-1] if found else None

        await wait_until(lambda: all((r := last(i.incident_id)) and r.tombstone for i in fires), 30,
                         what="a changelog tombstone for every released incident")
        assert not last(still_open.incident_id).tombstone

        worker.kill9()
        worker.start()
        await worker.wait_ready()
        async def recovered() -> bool:  # the gauge is set on the first tick after recovery
            return await worker.metric("muster_escalation_states") == 1

        await wait_until(recovered, 30, interval=0.3, what="the restarted worker's table: the open incident only")

        late = fires[0]
        await send(producer, catalog, fact(ev.IncidentUpdated, late.incident_id, utcnow(), severity=5,
                                           casualties=ev.Casualties(fatalities=2)))
        await wait_until(lambda: (r := last(late.incident_id)) is not None and not r.tombstone, 30,
                         what="the late fact's stub state")
        stub = last(late.incident_id).value
        assert stub.get("category") is None and stub["closed_at"] is not None  # cannot escalate; finished at once
        await wait_until(lambda: last(late.incident_id).tombstone, 30, what="the stub released in turn")
        raised = tap.on(everyone, late.incident_id, "EscalationRaised")
        assert [v["level"] for v in raised] == [3]  # the original raise only: the late fact raised nothing
    finally:
        if tap:
            await tap.stop()
        await producer.stop()
        worker.stop()
