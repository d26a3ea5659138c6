"""The scripted scenarios say what they promise."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from services.shared import events as ev
from services.shared.events import Agency, Category, Hazard
from services.simulator.generator import FeedConfig, generate, planned_scenarios
from services.simulator.scenarios import SCENARIOS, ScenarioError, first_at_or_after, parse, ward_named
from tests.unit.simulator.conftest import FRIDAY


def _only(name: str, at: time | None = None) -> list[ev.IncidentEvent]:
    return list(generate(FeedConfig(start=FRIDAY, hours=24, seed=5, background=False, scenarios=((name, at),))))


def _reports(events, category=None):
    return [e for e in events if isinstance(e, ev.IncidentReported) and (category is None or e.category is category)]


def test_the_poplar_tower_fire_is_a_severity_5_major_incident_with_casualties():
    events = _only("poplar-fire")
    lead = _reports(events)[0]
    assert lead.category is Category.FIRE and lead.severity == 5
    assert lead.location.ward_code == ward_named("Poplar").code
    assert lead.casualties.total > 0
    assert {Hazard.FIRE, Hazard.SMOKE, Hazard.HEIGHT} <= set(lead.hazards)
    assert {Agency.FIRE, Agency.POLICE, Agency.AMBULANCE} <= set(lead.agencies_required)
    assert any(isinstance(e, ev.MajorIncidentDeclared) and e.incident_id == lead.incident_id for e in events)
    linked = [e for e in events if isinstance(e, ev.IncidentLinked)]
    assert len(linked) == 3 and {e.lead_incident_id for e in linked} == {lead.incident_id}
    updates = [e for e in events if isinstance(e, ev.IncidentUpdated)]
    assert updates[0].casualties.total > lead.casualties.total


def test_the_whitechapel_spike_follows_a_flashpoint_with_graded_tension_reports():
    events = _reports(_only("whitechapel-hate"))
    whitechapel = ward_named("Whitechapel").code
    hate = [r for r in events if r.category is Category.HATE_INCIDENT and r.location.ward_code == whitechapel]
    assert len(hate) >= 10
    assert hate[0].severity == 4 and hate[0].police_grading is ev.PoliceGrading.EVIDENCED
    assert max(r.occurred_at for r in hate) - hate[0].occurred_at <= timedelta(hours=8)
    tension = [r for r in events if r.category is Category.COMMUNITY_TENSION_REPORT]
    assert len(tension) == 4 and all(r.police_grading is not None for r in tension)


def test_the_bow_rave_is_reported_by_neighbours_and_closed_down():
    events = _only("bow-rave")
    rave = _reports(events, Category.ILLEGAL_RAVE)[0]
    assert rave.location.ward_code == ward_named("Bow East").code
    statuses = [e.status for e in events if isinstance(e, ev.IncidentStatusChanged) and e.incident_id == rave.incident_id]
    assert statuses[-3:] == [ev.IncidentStatus.CONTAINED, ev.IncidentStatus.RESOLVED, ev.IncidentStatus.CLOSED]
    assert any(isinstance(e, ev.ResponderArrived) and e.agency is Agency.POLICE for e in events)


def test_the_knife_victim_is_a_late_report_from_hospital_with_a_restricted_victim():
    events = _only("knife-hospital")
    knife = _reports(events, Category.KNIFE_CRIME)[0]
    assert knife.source.kind is ev.SourceKind.AMBULANCE
    assert knife.recorded_at - knife.occurred_at >= timedelta(hours=1)
    assert knife.casualties.serious == 1 and knife.people[0].role is ev.PersonRole.VICTIM
    # where it happened (as the victim says), not the hospital's ward; the hospital is said apart
    assert knife.location.ward_code == ward_named("Stepney Green").code and knife.location.lat is None
    assert knife.presented_at.ward_code == ward_named("Whitechapel").code
    safeguarding = _reports(events, Category.SAFEGUARDING_CHILD)[0]
    assert safeguarding.classification is ev.Classification.OFFICIAL_SENSITIVE


def test_a_scenario_starts_at_its_time_of_day_in_london():
    events = _only("poplar-fire")
    assert _reports(events)[0].recorded_at == datetime(2026, 11, 20, 2, 40, tzinfo=timezone.utc)
    moved = _only("poplar-fire", time(14, 30))
    assert _reports(moved)[0].recorded_at == datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)


def test_a_scenario_outside_the_period_is_left_out():
    config = FeedConfig(start=FRIDAY, hours=2, scenarios=(("poplar-fire", None), ("bow-rave", None)))
    assert [s.name for s, _ in planned_scenarios(config)] == ["bow-rave"]


def test_first_at_or_after_rolls_over_to_the_next_day():
    start = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
    assert first_at_or_after(start, time(14, 0)) == datetime(2026, 11, 21, 14, 0, tzinfo=timezone.utc)


def test_a_scenario_can_be_named_with_a_time():
    scenario, when = parse("bow-rave@23:15")
    assert scenario is SCENARIOS["bow-rave"] and when == time(23, 15)


@pytest.mark.parametrize("spec, message", [("tower-fire", "unknown 'tower-fire'"), ("bow-rave@late", "not HH:MM")])
def test_a_bad_scenario_is_named_with_the_problem(spec, message):
    with pytest.raises(ScenarioError, match=message):
        parse(spec)
