"""CAP 1.2 by its text: each message read back with lxml and checked against the OASIS schema."""

import uuid

from services.escalation import cap
from services.escalation.state import correlated
from services.shared import events as ev
from tests.cap_schema import assert_valid_cap
from tests.unit.escalation.helpers import (
    CONTACT, DEFAULT_RULES, POPLAR, SENDER, T0, escalate, fact, lead, poplar_fire, reported, ruleset, state, timedelta,
)

NS = {"c": cap.NS}
SEV4 = ruleset(rules=[{"id": "sev4", "description": "d", "level": 1, "when": {"min_severity": 4}}])


def get(doc, path):
    return doc.findtext(path, namespaces=NS)


def all_of(doc, path):
    return [e.text for e in doc.findall(path, namespaces=NS)]


def test_an_escalation_renders_a_valid_cap_alert_with_the_mapped_fields():
    fire = poplar_fire()
    (raised,), _, _ = escalate(lead(state(fire)))
    doc = assert_valid_cap(raised.cap_xml)
    assert get(doc, "c:identifier") == f"urn:uuid:{raised.event_id}"
    assert get(doc, "c:sender") == SENDER
    assert get(doc, "c:sent") == "2026-11-20T21:30:05-00:00"  # the report's recorded_at, UTC as -00:00
    assert (get(doc, "c:status"), get(doc, "c:msgType"), get(doc, "c:scope")) == ("Actual", "Alert", "Restricted")
    assert get(doc, "c:restriction").startswith("OFFICIAL: ")
    assert all_of(doc, "c:info/c:category") == ["Fire"]
    assert (get(doc, "c:info/c:urgency"), get(doc, "c:info/c:severity")) == ("Immediate", "Extreme")
    assert get(doc, "c:info/c:responseType") == "Execute" and "respond at level 3" in get(doc, "c:info/c:instruction")
    assert get(doc, "c:info/c:contact") == CONTACT
    assert get(doc, "c:info/c:expires") == "2026-11-21T09:30:05-00:00"
    assert get(doc, "c:info/c:certainty") == "Observed"
    assert get(doc, "c:info/c:area/c:circle") == "51.50800,-0.01700 0.2"
    codes = dict(zip(all_of(doc, "c:info/c:area/c:geocode/c:valueName"), all_of(doc, "c:info/c:area/c:geocode/c:value")))
    assert codes == {cap.BOROUGH_GEOCODE: "E09000030", cap.WARD_GEOCODE: POPLAR}
    params = dict(zip(all_of(doc, "c:info/c:parameter/c:valueName"), all_of(doc, "c:info/c:parameter/c:value")))
    assert params["M-major-incident"] == "no"
    assert params["M-statement"] == "not declared; level 3 by rule mass-casualty"
    assert params["N-casualties"] == "fatalities 0, serious 2, minor 4, uninjured involved 0"
    assert params["A-access"] == "not yet known"


def test_no_timestamp_in_cap_is_written_with_z_or_plus_zero():
    (raised,), _, _ = escalate(lead(state(poplar_fire())))
    assert "+00:00" not in raised.cap_xml and "Z<" not in raised.cap_xml


def test_category_follows_the_standard_table_and_hazards_add_their_own():
    flood = reported(category="flood", severity=5, location=ev.Location(ward_code=POPLAR))
    (raised,), _, _ = escalate(state(flood))
    assert all_of(assert_valid_cap(raised.cap_xml), "c:info/c:category") == ["Met"]
    gas = reported(category="explosion_or_collapse", severity=5, location=ev.Location(ward_code=POPLAR),
                   hazards=("gas_leak", "structural_collapse"))
    (raised,), _, _ = escalate(state(gas))
    assert all_of(assert_valid_cap(raised.cap_xml), "c:info/c:category") == ["Rescue", "CBRNE"]
    chemical = reported(category="fire", severity=5, location=ev.Location(ward_code=POPLAR), hazards=("chemical",))
    (raised,), _, _ = escalate(state(chemical))
    assert all_of(assert_valid_cap(raised.cap_xml), "c:info/c:category") == ["Fire", "CBRNE"]


def test_the_same_escalation_renders_the_same_bytes_on_a_replay_whatever_the_clock():
    s = lead(state(poplar_fire()))
    first, _, _ = escalate(s)
    again, _, _ = escalate(s, now=T0 + timedelta(hours=1))
    assert first[0].event_id == again[0].event_id and first[0].cap_xml == again[0].cap_xml


def test_a_later_level_is_an_update_referencing_the_earlier_alert_as_sender_identifier_sent():
    (first,), _, s = escalate(state(reported(severity=4, occurred_at=T0)), SEV4, T0)
    (second,), _, _ = escalate(s, SEV4, T0 + timedelta(seconds=61))
    doc = assert_valid_cap(second.cap_xml)
    assert get(doc, "c:msgType") == "Update"
    assert get(doc, "c:references") == f"{SENDER},urn:uuid:{first.event_id},2026-11-20T21:30:05-00:00"
    assert get(doc, "c:sent") == "2026-11-20T21:31:00-00:00"  # the deadline that climbed it


def test_a_material_change_sends_an_update_referencing_every_earlier_message():
    fire = poplar_fire()
    (alert,), _, s = escalate(lead(state(fire)))
    worse = fact(ev.IncidentUpdated, fire.incident_id, T0 + timedelta(minutes=3),
                 casualties=ev.Casualties(fatalities=1, serious=4))
    s2 = state_after(s, worse)
    (update,), _, s3 = escalate(s2, before=s)
    assert update.event_type == "EscalationUpdated" and update.sequence == 1 and update.changed == ("N",)
    doc = assert_valid_cap(update.cap_xml)
    assert get(doc, "c:msgType") == "Update" and get(doc, "c:sent") == "2026-11-20T21:33:00-00:00"
    assert get(doc, "c:references") == f"{SENDER},urn:uuid:{alert.event_id},2026-11-20T21:30:05-00:00"
    rvp = fact(ev.IncidentUpdated, fire.incident_id, T0 + timedelta(minutes=6),
               access=ev.Access(rendezvous_point="Langdon Park DLR"))
    (again,), _, _ = escalate(state_after(s3, rvp), before=s3)
    refs = get(assert_valid_cap(again.cap_xml), "c:references").split(" ")
    assert [r.split(",")[1] for r in refs] == [f"urn:uuid:{alert.event_id}", f"urn:uuid:{update.event_id}"]
    assert again.changed == ("A",) and again.methane.access == "rendezvous point: Langdon Park DLR"


def test_a_fact_that_changes_nothing_in_methane_sends_nothing():
    fire = poplar_fire()
    _, _, s = escalate(lead(state(fire)))
    note = fact(ev.NoteAdded, fire.incident_id, T0 + timedelta(minutes=2), text="x")
    events, _, _ = escalate(state_after(s, note), before=s)
    assert events == []


def test_a_declaration_sends_an_update_with_m_yes_naming_the_declarer():
    fire = poplar_fire()
    _, _, s = escalate(lead(state(fire)))
    declared = fact(ev.MajorIncidentDeclared, fire.incident_id, T0 + timedelta(minutes=8), declared_by="gm-7",
                    agency="fire")
    (update,), _, _ = escalate(state_after(s, declared), before=s)
    assert update.methane.major_incident and "M" in update.changed
    assert "declared by gm-7 (fire)" in update.methane.major_incident_statement


def state_after(s, *facts):
    from services.escalation.state import fold

    for f in facts:
        s = fold(s, f, partition=0)
    return s


def test_resolution_is_an_all_clear_update_with_expires_and_unfounded_is_a_cancel():
    incident = reported(severity=4, occurred_at=T0)
    (first,), _, s = escalate(state(incident), SEV4, T0)
    for status, msg_type in (("resolved", "Update"), ("closed", "Update"), ("unfounded", "Cancel"),
                             ("false_alarm", "Cancel")):
        done = state_after(s, fact(ev.IncidentStatusChanged, incident.incident_id, T0 + timedelta(minutes=5),
                                   status=status))
        (stood_down,), _, _ = escalate(done, SEV4, T0 + timedelta(minutes=5))
        assert isinstance(stood_down, ev.EscalationStoodDown) and stood_down.levels == (1,)
        doc = assert_valid_cap(stood_down.cap_xml)
        assert get(doc, "c:msgType") == msg_type, status
        assert get(doc, "c:references").split(",")[1] == f"urn:uuid:{first.event_id}"
        if msg_type == "Update":
            assert get(doc, "c:info/c:responseType") == "AllClear"
            assert get(doc, "c:info/c:expires") == "2026-11-20T22:35:00-00:00"
        else:
            assert doc.find("c:info", namespaces=NS) is None


def test_exercise_and_test_incidents_say_so_in_status_note_and_headline():
    (raised,), _, _ = escalate(lead(state(poplar_fire(mode="exercise", exercise="Operation Ember 2026"))))
    doc = assert_valid_cap(raised.cap_xml)
    assert get(doc, "c:status") == "Exercise" and "EXERCISE Operation Ember 2026" in get(doc, "c:note")
    assert get(doc, "c:info/c:headline").startswith("EXERCISE: ") and raised.exercise == "Operation Ember 2026"
    (raised,), _, _ = escalate(lead(state(poplar_fire(mode="test"))))
    doc = assert_valid_cap(raised.cap_xml)
    assert get(doc, "c:status") == "Test" and get(doc, "c:info/c:headline").startswith("TEST: ")


def test_an_incident_without_coordinates_has_a_ward_area_without_a_circle():
    incident = reported(category="flood", severity=5, location=ev.Location(ward_code=POPLAR))
    (raised,), _, _ = escalate(state(incident))
    doc = assert_valid_cap(raised.cap_xml)
    assert doc.find("c:info/c:area/c:circle", namespaces=NS) is None
    assert POPLAR in all_of(doc, "c:info/c:area/c:geocode/c:value")


def test_a_scene_outside_the_borough_says_so_in_the_area():
    (raised,), _, _ = escalate(state(reported(category="fire", severity=5, location=ev.Location(ward_code=POPLAR),
                                              outside_borough="London Borough of Hackney")))
    doc = assert_valid_cap(raised.cap_xml)
    assert get(doc, "c:info/c:area/c:areaDesc").startswith("Scene outside the borough (London Borough of Hackney)")
    assert "Hackney" in get(doc, "c:info/c:headline")


def test_a_lead_lists_its_related_reports_in_incidents():
    other = uuid.uuid4()
    s = correlated(state(poplar_fire()), (ev.Related(incident_id=other, rule_id="same-fire-or-collapse",
                                                     distance_m=80.0, interval_s=60.0),))
    (raised,), _, _ = escalate(s, DEFAULT_RULES)
    assert raised.related_incident_ids == (other,) and raised.related[0].distance_m == 80.0
    assert str(other) in get(assert_valid_cap(raised.cap_xml), "c:incidents")


def test_a_sensitive_incident_states_its_caveat():
    incident = reported(category="safeguarding_adult", severity=4, source=ev.Source(kind="police", id="p1",
                                                                                     agency="police"))
    (raised,), _, _ = escalate(state(incident), SEV4)
    doc = assert_valid_cap(raised.cap_xml)
    assert get(doc, "c:restriction").startswith("OFFICIAL-SENSITIVE: need to know only")
