import uuid

from services.escalation import rules
from services.escalation.state import corroborated, linked
from services.shared import events as ev
from tests.unit.escalation.helpers import DEFAULT_RULES, T0, fact, poplar_fire, reported, ruleset, state, timedelta

NOW = T0 + timedelta(seconds=10)


def _decide_and_apply(s, rs=DEFAULT_RULES, now=NOW):
    d = rules.decide(s, rs, now)
    return d, rules.apply(s, d)


def test_a_severity_5_fire_with_casualties_goes_straight_to_level_3_for_fire_police_and_ambulance():
    d = rules.decide(state(poplar_fire()), DEFAULT_RULES, NOW)
    assert [r.level for r in d.raises] == [3]
    assert {"fire", "police", "ambulance"} <= {a.value for a in d.raises[0].agencies}


def test_a_minor_antisocial_behaviour_report_escalates_nothing_and_sets_no_deadline():
    d = rules.decide(state(reported(category="antisocial_behaviour", severity=2)), DEFAULT_RULES, NOW)
    assert d.raises == () and d.next_deadline is None and not d.stand_down


def test_each_level_is_raised_once():
    _, s = _decide_and_apply(state(poplar_fire()))
    again = rules.decide(s, DEFAULT_RULES, NOW)
    assert again.raises == ()


def test_a_hazard_raises_its_rule_level():
    d = rules.decide(state(reported(category="other", severity=2, hazards=("gas_leak",))), DEFAULT_RULES, NOW)
    assert [(r.level, r.rule_id) for r in d.raises] == [(2, "dangerous-hazard")]


def test_an_operator_declaration_raises_a_major_incident():
    incident = reported(category="protest_or_gathering", severity=3)
    s = state(incident, fact(ev.MajorIncidentDeclared, incident.incident_id, declared_by="insp-9", agency="police"))
    assert [(r.level, r.rule_id) for r in rules.decide(s, DEFAULT_RULES, NOW).raises] == [(3, "operator-declared-major")]


def test_a_rise_in_casualties_climbs_to_the_higher_level_only():
    incident = reported(category="road_traffic_collision", severity=4)
    _, s = _decide_and_apply(state(incident))
    assert set(s.raised) == {2}
    s = rules.apply(s, rules.decide(s, DEFAULT_RULES, NOW))
    worse = state(incident, fact(ev.IncidentUpdated, incident.incident_id, casualties=ev.Casualties(fatalities=1)))
    worse = worse.model_copy(update={"raised": s.raised, "rule_set": s.rule_set})
    assert [r.level for r in rules.decide(worse, DEFAULT_RULES, NOW).raises] == [3]


def test_an_unacknowledged_incident_climbs_one_level_per_missed_deadline_up_to_the_limit():
    rs = ruleset(rules=[{"id": "sev4", "description": "d", "level": 1, "when": {"min_severity": 4}}],
                 acknowledgement={"deadline_seconds": {4: 60}, "climb_limit": 3})
    s = state(reported(severity=4, occurred_at=T0))
    d, s = _decide_and_apply(s, rs, T0)
    assert [r.level for r in d.raises] == [1] and s.next_deadline == T0 + timedelta(seconds=60)
    d, s = _decide_and_apply(s, rs, T0 + timedelta(seconds=59))
    assert d.raises == ()
    d, s = _decide_and_apply(s, rs, T0 + timedelta(seconds=61))
    assert [(r.level, r.rule_id, r.at) for r in d.raises] == [(2, rules.DEADLINE_RULE, T0 + timedelta(seconds=60))]
    d, s = _decide_and_apply(s, rs, T0 + timedelta(seconds=121))
    assert [r.level for r in d.raises] == [3] and s.next_deadline is None
    d, s = _decide_and_apply(s, rs, T0 + timedelta(hours=1))
    assert d.raises == ()


def test_deadlines_missed_while_the_processor_was_down_all_fire_on_its_return():
    rs = ruleset(acknowledgement={"deadline_seconds": {4: 60}, "climb_limit": 3})
    d = rules.decide(state(reported(severity=4, occurred_at=T0)), rs, T0 + timedelta(minutes=10))
    assert [r.level for r in d.raises] == [1, 2, 3]
    assert [r.at for r in d.raises] == [T0 + timedelta(seconds=60 * k) for k in (1, 2, 3)]


def test_acknowledgement_stops_the_climb():
    rs = ruleset(acknowledgement={"deadline_seconds": {4: 60}, "climb_limit": 3})
    incident = reported(severity=4, occurred_at=T0)
    _, s = _decide_and_apply(state(incident), rs, T0 + timedelta(seconds=61))
    assert set(s.raised) == {1}
    acked = state(incident, fact(ev.IncidentAcknowledged, incident.incident_id, acknowledged_by="op-1"))
    acked = acked.model_copy(update={"raised": s.raised, "rule_set": s.rule_set, "next_deadline": s.next_deadline})
    d = rules.decide(acked, rs, T0 + timedelta(hours=1))
    assert d.raises == () and d.next_deadline is None


def test_resolving_an_escalated_incident_stands_it_down_once():
    incident = poplar_fire()
    _, s = _decide_and_apply(state(incident))
    resolved = state(incident, fact(ev.IncidentStatusChanged, incident.incident_id, status="resolved"))
    resolved = resolved.model_copy(update={"raised": s.raised, "rule_set": s.rule_set})
    d, after = _decide_and_apply(resolved)
    assert d.stand_down and d.raises == ()
    assert not rules.decide(after, DEFAULT_RULES, NOW).stand_down


def test_resolving_an_incident_that_never_escalated_stands_nothing_down():
    incident = reported()
    s = state(incident, fact(ev.IncidentStatusChanged, incident.incident_id, status="false_alarm"))
    assert not rules.decide(s, DEFAULT_RULES, NOW).stand_down


def test_the_rule_set_in_force_at_the_first_escalation_stays_with_the_incident():
    old = ruleset(version="old", rules=[{"id": "sev4", "description": "d", "level": 1, "when": {"min_severity": 4}}],
                  acknowledgement={"deadline_seconds": {4: 60}, "climb_limit": 3})
    new = ruleset(version="new", rules=[{"id": "sev4", "description": "d", "level": 1, "when": {"min_severity": 4}}],
                  acknowledgement={"deadline_seconds": {4: 3600}, "climb_limit": 1})
    _, s = _decide_and_apply(state(reported(severity=4, occurred_at=T0)), old, T0)
    d = rules.decide(s, new, T0 + timedelta(seconds=61))
    assert d.rules.version == "old" and [r.level for r in d.raises] == [2]


def test_a_corroborated_lead_escalates_once_for_the_group_naming_the_others():
    members = (uuid.uuid4(), uuid.uuid4())
    s = corroborated(state(reported(category="violence", severity=3)), "corroborated-disorder", members)
    d = rules.decide(s, DEFAULT_RULES, NOW)
    assert [(r.level, r.rule_id) for r in d.raises] == [(2, "corroborated-disorder")]
    assert set(d.raises[0].related) == set(members)


def test_a_linked_report_never_escalates_on_its_own():
    s = linked(state(poplar_fire()), uuid.uuid4())
    d = rules.decide(s, DEFAULT_RULES, NOW)
    assert d.raises == () and d.next_deadline is None


def test_event_ids_are_deterministic_per_incident_and_level():
    incident_id = uuid.uuid4()
    assert rules.raised_event_id(incident_id, 2) == rules.raised_event_id(incident_id, 2)
    assert rules.raised_event_id(incident_id, 2) != rules.raised_event_id(incident_id, 3)


def test_a_late_dispatch_never_moves_a_resolved_incident_back():
    incident = reported()
    s = state(incident, fact(ev.IncidentStatusChanged, incident.incident_id, status="resolved"),
              fact(ev.ResponderDispatched, incident.incident_id, agency="police", callsign="TH-12"))
    assert s.status is ev.IncidentStatus.RESOLVED
