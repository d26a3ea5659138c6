from services.escalation.methane import NONE_REPORTED, methane
from services.shared import events as ev
from tests.unit.escalation.helpers import POPLAR, fact, poplar_fire, reported, state


def test_methane_of_a_poplar_fire_is_complete():
    incident = poplar_fire(location=ev.Location(ward_code=POPLAR, lat=51.508, lon=-0.017,
                                                  address="Chrisp Street Market", what3words="index.home.raft"))
    s = state(incident, fact(ev.ResponderArrived, incident.incident_id, agency="fire", callsign="F21"))
    m = methane(s, 3, (ev.Agency.FIRE, ev.Agency.POLICE, ev.Agency.AMBULANCE))
    assert m.major_incident is True
    assert "Poplar" in m.exact_location and "Chrisp Street Market" in m.exact_location
    assert "///index.home.raft" in m.exact_location and "51.50800,-0.01700" in m.exact_location
    assert m.type == "fire, severity 5 of 5"
    assert m.hazards == ("fire", "smoke")
    assert "///index.home.raft" in m.access
    assert (m.number_of_casualties.serious, m.number_of_casualties.minor) == (2, 4)
    assert m.emergency_services_present == (ev.Agency.FIRE,)
    assert {ev.Agency.FIRE, ev.Agency.POLICE, ev.Agency.AMBULANCE} <= set(m.emergency_services_required)


def test_below_level_3_no_major_incident_is_declared_unless_an_operator_did():
    incident = reported(category="flood", severity=3)
    assert methane(state(incident), 2, (ev.Agency.COUNCIL,)).major_incident is False
    declared = state(incident, fact(ev.MajorIncidentDeclared, incident.incident_id, declared_by="x1", agency="council"))
    assert methane(declared, 2, (ev.Agency.COUNCIL,)).major_incident is True


def test_no_hazards_reported_is_said_explicitly():
    assert methane(state(reported()), 1, (ev.Agency.COUNCIL,)).hazards == (NONE_REPORTED,)


def test_methane_never_carries_the_report_description():
    incident = reported(description="Mr Smith at number 4 was seen")
    m = methane(state(incident), 1, (ev.Agency.COUNCIL,))
    assert "Smith" not in m.model_dump_json()
