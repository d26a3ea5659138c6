"""The one definition of which incident facts a processor takes (services/shared/admission.py),
and the projector's and escalation processor's folds that call it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.escalation import state as escalation_state
from services.projector import rules as projector_rules
from services.shared import events as ev
from services.shared.admission import MODE_MISMATCH, REPEATED_REPORT, Refused, Reported, refusal
from tests.factories import T0, fact, reported

INCIDENT = uuid.uuid4()


def test_anything_goes_before_the_first_report():
    assert refusal(None, "IncidentReported", "exercise", INCIDENT) is None
    assert refusal(None, "NoteAdded", "test", INCIDENT) is None


def test_a_second_report_is_refused_whatever_its_mode():
    for mode in ("live", "exercise"):
        why = refusal(Reported("live"), "IncidentReported", mode, INCIDENT)
        assert why is not None and why.reason == REPEATED_REPORT and str(INCIDENT) in why.detail


@pytest.mark.parametrize("mode", [ev.Mode.EXERCISE, ev.Mode.TEST])
def test_a_fact_of_another_mode_is_refused_and_one_of_the_same_mode_taken(mode):
    why = refusal(Reported("live"), "IncidentStatusChanged", mode, INCIDENT)
    assert why is not None and why.reason == MODE_MISMATCH and "live" in why.detail
    assert refusal(Reported(mode.value), "IncidentStatusChanged", mode, INCIDENT) is None


def test_the_escalation_fold_refuses_a_second_report_and_a_fact_of_another_mode():
    first = reported()
    s = escalation_state.fold(None, first)
    with pytest.raises(Refused, match="repeated_report"):
        escalation_state.fold(s, reported(incident_id=first.incident_id, category="fire", severity=5))
    with pytest.raises(Refused, match="mode_mismatch"):
        escalation_state.fold(s, fact(ev.NoteAdded, first.incident_id, T0, text="x", mode=ev.Mode.EXERCISE))
    assert escalation_state.fold(s, fact(ev.NoteAdded, first.incident_id, T0, text="x")).mode is ev.Mode.LIVE


def _update(incident_id, **fields):
    return fact(ev.IncidentUpdated, incident_id, T0 + timedelta(minutes=1), **fields)


def test_agencies_required_fold_as_a_union_in_both_processors():
    first = reported(agencies_required=(ev.Agency.POLICE, ev.Agency.HOUSING))
    narrower = _update(first.incident_id, agencies_required=(ev.Agency.FIRE,))
    esc = escalation_state.fold(escalation_state.fold(None, first), narrower)
    proj = projector_rules.fold([first, narrower])[first.incident_id]
    assert esc.agencies_required == (ev.Agency.POLICE, ev.Agency.FIRE, ev.Agency.HOUSING)
    assert proj.agencies_required == ["police", "fire", "housing"]


def test_only_an_explicit_removal_drops_an_agency():
    first = reported(agencies_required=(ev.Agency.POLICE, ev.Agency.HOUSING))
    removal = _update(first.incident_id, agencies_removed=(ev.Agency.HOUSING,))
    esc = escalation_state.fold(escalation_state.fold(None, first), removal)
    proj = projector_rules.fold([first, removal])[first.incident_id]
    assert esc.agencies_required == (ev.Agency.POLICE,)
    assert proj.agencies_required == ["police"]
