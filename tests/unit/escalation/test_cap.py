import uuid

from services.escalation import cap, rules
from services.escalation.outputs import outputs
from services.escalation.state import corroborated
from services.shared import events as ev
from tests.cap_schema import assert_valid_cap
from tests.unit.escalation.helpers import POPLAR, DEFAULT_RULES, T0, fact, poplar_fire, reported, ruleset, state, timedelta

NS = {"c": cap.NS}
SENDER = "escalation@muster.test"


def _escalate(s, rs=DEFAULT_RULES, now=T0):
    d = rules.decide(s, rs, now)
    return outputs(s, d, sender=SENDER, now=now), rules.apply(s, d)


def test_an_escalation_renders_a_valid_cap_alert_with_the_mapped_fields():
    (raised,), _ = _escalate(state(poplar_fire()))
    doc = assert_valid_cap(raised.cap_xml)
    get = lambda path: doc.findtext(path, namespaces=NS)  # noqa: E731
    assert get("c:identifier") == f"urn:uuid:{raised.event_id}"
    assert get("c:sender") == SENDER and get("c:sent") == "2026-11-20T21:30:00+00:00"
    assert (get("c:status"), get("c:msgType"), get("c:scope")) == ("Actual", "Alert", "Restricted")
    assert (get("c:info/c:category"), get("c:info/c:urgency"), get("c:info/c:severity")) == ("Fire", "Immediate", "Extreme")
    assert get("c:info/c:certainty") == "Observed"
    assert get("c:info/c:area/c:areaDesc") == "Poplar ward"
    assert get("c:info/c:area/c:circle") == "51.50800,-0.01700 0.2"


def test_the_same_escalation_renders_the_same_identifier_on_a_replay():
    s = state(poplar_fire())
    first, _ = _escalate(s)
    again, _ = _escalate(s, now=T0 + timedelta(hours=1))
    assert first[0].event_id == again[0].event_id and first[0].cap_xml == again[0].cap_xml


def test_a_later_level_is_an_update_referencing_the_earlier_alert():
    rs = ruleset(rules=[{"id": "sev4", "description": "d", "level": 1, "when": {"min_severity": 4}}])
    (first,), s = _escalate(state(reported(severity=4, occurred_at=T0)), rs, T0)
    (second,), _ = _escalate(s, rs, T0 + timedelta(seconds=61))
    doc = assert_valid_cap(second.cap_xml)
    assert doc.findtext("c:msgType", namespaces=NS) == "Update"
    assert doc.findtext("c:references", namespaces=NS) == f"{SENDER},urn:uuid:{first.event_id},2026-11-20T21:30:00+00:00"


def test_a_stand_down_is_a_valid_cap_cancel_referencing_every_raised_alert():
    rs = ruleset(rules=[{"id": "sev4", "description": "d", "level": 1, "when": {"min_severity": 4}}])
    incident = reported(severity=4, occurred_at=T0)
    (first,), s = _escalate(state(incident), rs, T0)
    (second,), s = _escalate(s, rs, T0 + timedelta(seconds=61))
    closed = state(incident, fact(ev.IncidentStatusChanged, incident.incident_id, T0 + timedelta(minutes=5),
                                  status="resolved"))
    closed = closed.model_copy(update={"raised": s.raised, "rule_set": s.rule_set})
    (stood_down,), _ = _escalate(closed, rs, T0 + timedelta(minutes=5))
    assert isinstance(stood_down, ev.EscalationStoodDown) and stood_down.levels == (1, 2)
    doc = assert_valid_cap(stood_down.cap_xml)
    assert doc.findtext("c:msgType", namespaces=NS) == "Cancel"
    refs = doc.findtext("c:references", namespaces=NS).split(" ")
    assert [r.split(",")[1] for r in refs] == [f"urn:uuid:{first.event_id}", f"urn:uuid:{second.event_id}"]


def test_exercise_and_test_incidents_render_exercise_and_test_status():
    for mode, status in (("exercise", "Exercise"), ("test", "Test")):
        (raised,), _ = _escalate(state(poplar_fire(mode=mode)))
        assert assert_valid_cap(raised.cap_xml).findtext("c:status", namespaces=NS) == status


def test_an_incident_without_coordinates_has_a_ward_area_without_a_circle():
    incident = reported(category="flood", severity=5, location=ev.Location(ward_code=POPLAR))
    (raised,), _ = _escalate(state(incident))
    doc = assert_valid_cap(raised.cap_xml)
    assert doc.find("c:info/c:area/c:circle", namespaces=NS) is None
    assert doc.findtext("c:info/c:area/c:geocode/c:value", namespaces=NS) == POPLAR


def test_a_corroborated_sensitive_incident_is_valid_and_keeps_its_classification():
    s = corroborated(state(reported(category="safeguarding_adult", severity=3)), "corroborated-disorder",
                     (uuid.uuid4(),))
    rs = ruleset(corroboration=[{"id": "corroborated-disorder", "description": "d", "categories": ["safeguarding_adult"],
                                 "min_reports": 2, "radius_m": 100, "window_minutes": 5, "level": 2}])
    (raised,), _ = _escalate(s, rs)
    doc = assert_valid_cap(raised.cap_xml)
    assert "OFFICIAL-SENSITIVE" in doc.findtext("c:restriction", namespaces=NS)
