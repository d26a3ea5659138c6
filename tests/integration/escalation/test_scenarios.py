"""The escalation scenarios of issue 4, against the real broker and a real worker process."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from lxml import etree

from services.escalation.cap import NS
from services.shared import events as ev
from services.shared.events import derived_event_id, utcnow
from services.shared.wards import wards
from tests.cap_schema import assert_valid_cap
from tests.factories import fact, reported
from tests.integration.escalation.conftest import DEADLINE_SECONDS
from tests.integration.escalation.support import escalation_topics, send
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

POPLAR = next(code for code, ward in wards().items() if ward.name == "Poplar")
C = {"c": NS}


def now_fact(cls, incident_id, **fields):
    return fact(cls, incident_id, utcnow(), **fields)


_PLACES = itertools.count()


def poplar_fire(**overrides) -> ev.IncidentReported:
    """A fire at a place of its own (~550 m from every other test's): the worker's correlation
    windows live as long as the session, and fires close together are one emergency."""
    at = utcnow()
    lat = round(51.509 + 0.005 * next(_PLACES), 5)
    fields = dict(
        occurred_at=at, recorded_at=at, category="fire", severity=5, source=ev.Source(kind="fire", id="lfb-1"),
        location=ev.Location(ward_code=POPLAR, lat=lat, lon=-0.015, address="Chrisp Street Market"),
        casualties=ev.Casualties(serious=2, minor=5), hazards=("fire", "smoke"), agencies_required=("fire",),
        description="Fire in a tower block",
    )
    fields.update(overrides)
    return reported(**fields)


def cap_of(value: dict) -> etree._Element:
    return assert_valid_cap(value["cap_xml"])


async def test_a_severity_5_fire_with_casualties_in_poplar_reaches_fire_police_and_ambulance_at_level_3(
        producer, topics, tap):
    incident = poplar_fire()
    await send(producer, topics, incident)
    agency_topics = [topics.escalation_topic(a, exercise=False) for a in ("fire", "police", "ambulance")]
    await wait_until(lambda: all(tap.on(t, incident.incident_id, "EscalationRaised") for t in agency_topics), 30,
                     what="level 3 on the fire, police and ambulance topics")
    for topic in agency_topics:
        (raised,) = tap.on(topic, incident.incident_id, "EscalationRaised")
        assert raised["level"] == 3 and raised["event_id"] == str(derived_event_id(incident.incident_id, 3, "raised"))
        m = raised["methane"]
        assert m["major_incident"] is False and "Poplar" in m["exact_location"] and m["type"].startswith("fire")
        assert m["major_incident_statement"].startswith("not declared; level 3 by rule ")
        assert m["hazards"] == ["fire", "smoke"] and m["access"] == "not yet known"
        assert (m["number_of_casualties"]["serious"], m["number_of_casualties"]["minor"]) == (2, 5)
        assert {"fire", "police", "ambulance"} <= set(m["emergency_services_required"])
        assert "emergency_services_present" in m
        assert cap_of(raised).findtext("c:msgType", namespaces=C) == "Alert"
    # The all-agencies topic is read by the tap at its own pace: awaited, then exactly one.
    every = topics.escalation_topic(None, exercise=False)
    await wait_until(lambda: tap.on(every, incident.incident_id), 30, what="the escalation on the all-agencies topic")
    assert len(tap.on(every, incident.incident_id)) == 1


async def test_a_minor_antisocial_behaviour_report_escalates_nothing(producer, topics, tap, worker):
    incident = reported(occurred_at=utcnow(), category="antisocial_behaviour", severity=2)
    await send(producer, topics, incident)
    await wait_until(lambda: tap.state_of(worker.changelog, incident.incident_id), 30,
                     what="the worker to record the report")
    assert not [t for t in escalation_topics(topics) if tap.on(t, incident.incident_id)]


async def test_three_cctv_reports_of_one_fight_close_together_produce_one_escalation(producer, topics, tap, worker):
    at = utcnow()
    reports = [
        reported(occurred_at=at + timedelta(minutes=i), recorded_at=at + timedelta(minutes=i), category="violence",
                 severity=3, source=ev.Source(kind="cctv", id=f"cam-{i}", agency="council"),
                 location=ev.Location(ward_code=POPLAR, lat=51.5090 + 0.0004 * i, lon=-0.0150))
        for i in range(3)
    ]
    for r in reports:
        await send(producer, topics, r)
    ids = {str(r.incident_id) for r in reports}
    everyone = topics.escalation_topic(None, exercise=False)
    await wait_until(lambda: [v for v in tap.on(everyone, event_type="EscalationRaised") if v["incident_id"] in ids],
                     30, what="the corroborated escalation")
    # The lead is the first report the worker saw (the three reach it from three partitions at once).
    (one,) = [v for v in tap.on(everyone, event_type="EscalationRaised") if v["incident_id"] in ids]
    members = [r.incident_id for r in reports if str(r.incident_id) != one["incident_id"]]
    await wait_until(lambda: all((tap.state_of(worker.changelog, m) or {}).get("linked_to") == one["incident_id"]
                                 for m in members), 30, what="the other reports to be linked to the lead")
    assert len([v for v in tap.on(everyone, event_type="EscalationRaised") if v["incident_id"] in ids]) == 1
    assert one["rule_id"] == "corroborated-disorder"
    assert set(one["related_incident_ids"]) == {str(m) for m in members}
    assert {r["incident_id"] for r in one["related"]} == {str(m) for m in members}
    cap_of(one)


async def test_an_unacknowledged_severity_4_incident_climbs_then_stops_once_acknowledged_and_stands_down(
        producer, topics, tap, worker):
    incident = reported(occurred_at=utcnow(), category="road_traffic_collision", severity=4,
                        source=ev.Source(kind="police", id="met-1"))
    everyone = topics.escalation_topic(None, exercise=False)
    raised = lambda: sorted(v["level"] for v in tap.on(everyone, incident.incident_id, "EscalationRaised"))  # noqa: E731
    await send(producer, topics, incident)
    await wait_until(lambda: raised() == [2], 30, what="the first escalation (level 2, serious collision)")
    await wait_until(lambda: raised() == [2, 3], 3 * DEADLINE_SECONDS + 10, what="a climb after the deadline")
    assert tap.on(everyone, incident.incident_id, "EscalationRaised")[1]["rule_id"] == "acknowledgement-deadline"

    second = reported(occurred_at=utcnow(), category="other", severity=4)
    await send(producer, topics, second)
    await wait_until(lambda: [v["level"] for v in tap.on(everyone, second.incident_id)] == [1], 30, what="level 1")
    await send(producer, topics, now_fact(ev.IncidentAcknowledged, second.incident_id, acknowledged_by="op-3"))
    await wait_until(lambda: (tap.state_of(worker.changelog, second.incident_id) or {}).get("acknowledged"), 30,
                     what="the acknowledgement to be recorded")
    next_due = second.occurred_at + timedelta(seconds=2 * DEADLINE_SECONDS + 2)
    await wait_until(lambda: utcnow() > next_due, 3 * DEADLINE_SECONDS + 5, what="the next deadline to pass")
    assert [v["level"] for v in tap.on(everyone, second.incident_id)] == [1]

    await send(producer, topics, now_fact(ev.IncidentStatusChanged, second.incident_id, status="resolved"))
    await wait_until(lambda: tap.on(everyone, second.incident_id, "EscalationStoodDown"), 30, what="the stand-down")
    (stood_down,) = tap.on(everyone, second.incident_id, "EscalationStoodDown")
    assert stood_down["levels"] == [1] and stood_down["final_status"] == "resolved"
    doc = cap_of(stood_down)
    assert doc.findtext("c:msgType", namespaces=C) == "Update"  # resolved: an all-clear, not a revocation
    assert doc.findtext("c:info/c:responseType", namespaces=C) == "AllClear"
    first_id = tap.on(everyone, second.incident_id, "EscalationRaised")[0]["event_id"]
    assert f"urn:uuid:{first_id}" in doc.findtext("c:references", namespaces=C)
    council = topics.escalation_topic("council", exercise=False)
    assert tap.on(council, second.incident_id, "EscalationStoodDown")


async def test_an_exercise_incident_never_reaches_a_live_topic(producer, topics, tap, worker):
    incident = poplar_fire(mode="exercise")
    await send(producer, topics, incident)
    exercise_fire = topics.escalation_topic("fire", exercise=True)
    await wait_until(lambda: tap.on(exercise_fire, incident.incident_id), 30, what="the exercise fire topic")
    await wait_until(lambda: tap.state_of(worker.changelog, incident.incident_id), 30, what="the recorded state")
    (raised,) = tap.on(exercise_fire, incident.incident_id)
    assert cap_of(raised).findtext("c:status", namespaces=C) == "Exercise"
    live = [t for t in escalation_topics(topics) if ".exercise." not in t]
    assert not [t for t in live if tap.on(t, incident.incident_id)]


async def test_a_test_incident_reaches_only_the_test_topics(producer, topics, tap, worker):
    incident = poplar_fire(mode="test")
    await send(producer, topics, incident)
    test_fire = topics.escalation_topic("fire", mode="test")
    await wait_until(lambda: tap.on(test_fire, incident.incident_id), 30, what="the test fire topic")
    await wait_until(lambda: tap.state_of(worker.changelog, incident.incident_id), 30, what="the recorded state")
    assert cap_of(tap.on(test_fire, incident.incident_id)[0]).findtext("c:status", namespaces=C) == "Test"
    others = [t for t in escalation_topics(topics) if ".test." not in t]
    assert not [t for t in others if tap.on(t, incident.incident_id)]


async def test_a_fact_whose_mode_differs_from_its_incidents_never_changes_it(producer, topics, tap, worker):
    incident = reported(occurred_at=utcnow(), category="other", severity=2)
    await send(producer, topics, incident)
    await send(producer, topics, now_fact(ev.IncidentUpdated, incident.incident_id, severity=5, mode="exercise"))
    await wait_until(lambda: (tap.state_of(worker.changelog, incident.incident_id) or {}).get("ignored") == 1, 30,
                     what="the exercise fact to be ignored")
    assert (tap.state_of(worker.changelog, incident.incident_id))["severity"] == 2
    assert not [t for t in escalation_topics(topics) if tap.on(t, incident.incident_id)]


async def test_duplicate_reports_of_one_fire_make_one_chain_and_the_lead_is_updated(producer, topics, tap, worker):
    first = poplar_fire()
    await send(producer, topics, first)
    everyone = topics.escalation_topic(None, exercise=False)
    await wait_until(lambda: tap.on(everyone, first.incident_id, "EscalationRaised"), 30, what="the lead's alert")
    near = first.location.model_copy(update={"lat": first.location.lat + 0.0005, "address": None})
    echo = poplar_fire(source=ev.Source(kind="public", id="caller-9"), location=near)
    await send(producer, topics, echo)
    await wait_until(lambda: tap.on(everyone, first.incident_id, "EscalationUpdated"), 30, what="the lead's update")
    (update,) = tap.on(everyone, first.incident_id, "EscalationUpdated")
    assert update["related_incident_ids"] == [str(echo.incident_id)]
    (rel,) = update["related"]
    assert rel["rule_id"] == "same-fire-or-collapse" and 0 < rel["distance_m"] < 100
    raised_id = tap.on(everyone, first.incident_id, "EscalationRaised")[0]["event_id"]
    assert f"urn:uuid:{raised_id}" in cap_of(update).findtext("c:references", namespaces=C)
    assert not tap.on(everyone, echo.incident_id)

    # An operator links a report that escalated on its own: its alert is cancelled as a duplicate.
    apart = poplar_fire(location=ev.Location(ward_code=POPLAR, address="Across the market"))  # no coordinates
    await send(producer, topics, apart)
    await wait_until(lambda: tap.on(everyone, apart.incident_id, "EscalationRaised"), 30, what="its own alert")
    await send(producer, topics, now_fact(ev.IncidentLinked, apart.incident_id, lead_incident_id=first.incident_id))
    await wait_until(lambda: tap.on(everyone, apart.incident_id, "EscalationStoodDown"), 30, what="the cancel")
    (cancel,) = tap.on(everyone, apart.incident_id, "EscalationStoodDown")
    assert cancel["duplicate_of"] == str(first.incident_id)
    doc = cap_of(cancel)
    assert doc.findtext("c:msgType", namespaces=C) == "Cancel" and str(first.incident_id) in doc.findtext(
        "c:note", namespaces=C)
    await wait_until(lambda: len(tap.on(everyone, first.incident_id, "EscalationUpdated")) == 2, 30,
                     what="the lead's second update")
    assert str(apart.incident_id) in tap.on(everyone, first.incident_id, "EscalationUpdated")[1]["related_incident_ids"]


async def test_a_report_near_a_fire_already_resolved_escalates_on_its_own(producer, topics, tap, worker):
    """The soak of 2026-12-03: a report near a lead that was over was linked to it and never escalated."""
    first = poplar_fire()
    everyone = topics.escalation_topic(None, exercise=False)
    await send(producer, topics, first)
    await wait_until(lambda: tap.on(everyone, first.incident_id, "EscalationRaised"), 30, what="the first alert")
    await send(producer, topics, now_fact(ev.IncidentStatusChanged, first.incident_id, status="resolved"))
    await wait_until(lambda: tap.on(everyone, first.incident_id, "EscalationStoodDown"), 30, what="the stand-down")
    near = first.location.model_copy(update={"lat": first.location.lat + 0.0005, "address": None})
    again = poplar_fire(source=ev.Source(kind="public", id="caller-12"), location=near)
    await send(producer, topics, again)
    await wait_until(lambda: tap.on(everyone, again.incident_id, "EscalationRaised"), 30,
                     what="the new fire's own alert")
    assert (tap.state_of(worker.changelog, again.incident_id) or {}).get("linked_to") is None
    assert not tap.on(everyone, first.incident_id, "EscalationUpdated")


async def test_poison_records_go_to_the_dead_letter_topic_and_later_records_still_flow(producer, topics, tap):
    incidents = topics.name("incidents")
    garbage = await producer.send_and_wait(incidents, b"\x00not json", key=b"junk", partition=2)
    bad_ward = poplar_fire().model_dump(mode="json") | {"location": {"ward_code": "E05999999"}}
    import json
    invalid = await producer.send_and_wait(incidents, json.dumps(bad_ward).encode(), key=b"junk", partition=2)
    later = poplar_fire(incident_id=uuid.uuid4())
    await send(producer, topics, later, partition=2)
    deadletter = topics.name("deadletter")
    # Other tests' services dead-letter other records of this shared topic: key by where the record is.
    letters = lambda: {(v["source_partition"], v["source_offset"]): v for v in tap.on(deadletter)  # noqa: E731
                       if v["source_topic"] == incidents and v["service"] == "escalation"}
    await wait_until(lambda: {(2, garbage.offset), (2, invalid.offset)} <= set(letters()), 30, what="two dead letters")
    assert letters()[(2, garbage.offset)]["error_class"] == "PoisonRecord"
    assert "ward_code" in letters()[(2, invalid.offset)]["error"]
    await wait_until(lambda: tap.on(topics.escalation_topic("fire", exercise=False), later.incident_id), 30,
                     what="the record after the poison to escalate")
