from services.escalation.methane import NONE_REPORTED, NOT_YET_KNOWN, methane
from services.shared import events as ev
from tests.unit.escalation.helpers import POPLAR, T0, fact, poplar_fire, reported, state, timedelta


def test_methane_of_a_poplar_fire_is_complete_and_says_only_what_is_so():
    incident = poplar_fire(location=ev.Location(ward_code=POPLAR, lat=51.508, lon=-0.017,
                                                  address="Chrisp Street Market", what3words="index.home.raft"))
    s = state(incident, fact(ev.ResponderArrived, incident.incident_id, agency="fire", callsign="F21"))
    m = methane(s, 3, (ev.Agency.FIRE, ev.Agency.POLICE, ev.Agency.AMBULANCE), "catastrophic-emergency")
    assert m.major_incident is False and m.declarations == ()
    assert m.major_incident_statement == "not declared; level 3 by rule catastrophic-emergency"
    assert "Poplar" in m.exact_location and "Chrisp Street Market" in m.exact_location
    assert "///index.home.raft" in m.exact_location and "51.50800,-0.01700" in m.exact_location
    assert m.type == "fire, severity 5 of 5"
    assert m.hazards == ("fire", "smoke")
    assert m.access == NOT_YET_KNOWN
    assert (m.number_of_casualties.serious, m.number_of_casualties.minor) == (2, 4)
    assert m.emergency_services_present == (ev.Agency.FIRE,)
    assert {ev.Agency.FIRE, ev.Agency.POLICE, ev.Agency.AMBULANCE} <= set(m.emergency_services_required)


def test_m_is_yes_only_after_a_declaration_naming_who_for_which_agency_and_when():
    incident = reported(category="flood", severity=3)
    assert methane(state(incident), 2, (ev.Agency.COUNCIL,)).major_incident is False
    at = T0 + timedelta(minutes=7)
    declared = state(incident, fact(ev.MajorIncidentDeclared, incident.incident_id, at, declared_by="gm-ops-1",
                                    agency="fire"))
    m = methane(declared, 2, (ev.Agency.COUNCIL,))
    assert m.major_incident is True
    assert m.declarations == (ev.Declaration(declared_by="gm-ops-1", agency="fire", at=at),)
    assert m.major_incident_statement == "yes: declared by gm-ops-1 (fire) at 2026-11-20 21:37 UTC"


def test_each_services_declaration_is_kept_once_in_time_order():
    incident = reported(category="fire", severity=5)
    police = fact(ev.MajorIncidentDeclared, incident.incident_id, T0 + timedelta(minutes=9), declared_by="insp-2",
                  agency="police")
    fire = fact(ev.MajorIncidentDeclared, incident.incident_id, T0 + timedelta(minutes=4), declared_by="gm-1",
                agency="fire")
    m = methane(state(incident, police, fire, fire), 3, ())
    assert [d.agency for d in m.declarations] == [ev.Agency.FIRE, ev.Agency.POLICE]


def test_access_is_not_yet_known_until_an_update_reports_routes_or_a_rendezvous_point():
    incident = poplar_fire()
    assert methane(state(incident), 3, ()).access == NOT_YET_KNOWN
    update = fact(ev.IncidentUpdated, incident.incident_id, T0 + timedelta(minutes=5),
                  access=ev.Access(rendezvous_point="Langdon Park DLR forecourt"))
    m = methane(state(incident, update), 3, ())
    assert m.access == "rendezvous point: Langdon Park DLR forecourt"


def test_ward_only_detail_names_the_ward_and_nothing_finer():
    incident = poplar_fire()
    update = fact(ev.IncidentUpdated, incident.incident_id, access=ev.Access(routes="via Cotall Street only"))
    m = methane(state(incident, update), 3, (), detail=ev.Detail.WARD)
    assert m.exact_location == f"Poplar ward ({POPLAR})"
    assert "Cotall" not in m.model_dump_json() and "Chrisp" not in m.model_dump_json()


def test_a_scene_outside_the_borough_and_a_hospital_presentation_are_kept_apart():
    hospital = ev.Location(ward_code="E05009336", lat=51.5185, lon=-0.0590, address="Hospital emergency department")
    incident = reported(category="knife_crime", severity=4, location=hospital, presented_at=hospital,
                        outside_borough="London Borough of Hackney")
    m = methane(state(incident), 2, ())
    assert m.exact_location.startswith("scene outside the borough (London Borough of Hackney)")
    assert "casualty presented at Whitechapel ward" in m.exact_location


def test_a_victim_presenting_at_hospital_keeps_the_scene_reported_in_another_ward():
    hospital = ev.Location(ward_code="E05009336", lat=51.5185, lon=-0.0590, address="Hospital emergency department")
    scene = ev.Location(ward_code=POPLAR)
    m = methane(state(reported(category="knife_crime", severity=4, location=scene, presented_at=hospital)), 2, ())
    assert m.exact_location.startswith(f"Poplar ward ({POPLAR}); casualty presented at Whitechapel ward")


def test_no_hazards_reported_is_said_explicitly():
    assert methane(state(reported()), 1, (ev.Agency.COUNCIL,)).hazards == (NONE_REPORTED,)


def test_methane_never_carries_the_report_description():
    incident = reported(description="Mr Smith at number 4 was seen")
    m = methane(state(incident), 1, (ev.Agency.COUNCIL,))
    assert "Smith" not in m.model_dump_json()
