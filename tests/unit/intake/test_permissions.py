"""The role table: who may post which incident fact, and which tension calendar fact."""

from __future__ import annotations

import pytest

from services.intake.permissions import MAY_POST, forbidden_reason, may_post, source_kind
from services.intake.validation import CALENDAR_TYPES, FACT_TYPES
from services.shared.auth import Principal, Role
from services.shared.events import DERIVED, Agency, SourceKind


def test_every_role_has_a_row_in_the_table():
    assert set(MAY_POST) == set(Role)


def test_the_table_names_only_incident_and_calendar_facts():
    assert set().union(*MAY_POST.values()) <= set(FACT_TYPES) | set(CALENDAR_TYPES)


@pytest.mark.parametrize("role", list(Role))
def test_no_role_may_post_a_derived_fact(role):
    assert not any(may_post(role, cls.model_fields["event_type"].default) for cls in DERIVED)


def test_an_analyst_may_post_no_incident_fact_only_planned_events():
    assert MAY_POST[Role.ANALYST] == frozenset({"PlannedEventRegistered", "PlannedEventCancelled"})


@pytest.mark.parametrize("role", [Role.CONTROL_ROOM, Role.ADMIN])
def test_control_room_and_admin_may_post_every_incident_and_calendar_fact(role):
    assert MAY_POST[role] == frozenset(FACT_TYPES) | frozenset(CALENDAR_TYPES)


@pytest.mark.parametrize("role", [r for r in Role if r not in (Role.CONTROL_ROOM, Role.ADMIN)])
def test_only_the_control_room_and_admins_silence_a_ward(role):
    assert not may_post(role, "TensionSilenced")


def test_a_cctv_operator_may_report_but_not_declare_a_major_incident():
    assert may_post(Role.CCTV_OPERATOR, "IncidentReported")
    assert not may_post(Role.CCTV_OPERATOR, "MajorIncidentDeclared")


def test_a_responder_may_declare_a_major_incident_but_not_link_incidents():
    assert may_post(Role.RESPONDER, "MajorIncidentDeclared")
    assert not may_post(Role.RESPONDER, "IncidentLinked")


def test_the_forbidden_reason_names_the_role_and_the_event_type():
    principal = Principal("analyst-3", Role.ANALYST, Agency.COUNCIL)
    assert forbidden_reason(principal, "NoteAdded") == "role analyst may not post NoteAdded"
    assert forbidden_reason(Principal("op-1", Role.CONTROL_ROOM, Agency.COUNCIL), "NoteAdded") is None


@pytest.mark.parametrize(
    ("role", "agency", "kind"),
    [
        (Role.CCTV_OPERATOR, Agency.COUNCIL, SourceKind.CCTV),
        (Role.ENFORCEMENT_OFFICER, Agency.COUNCIL, SourceKind.ENFORCEMENT_OFFICER),
        (Role.RESPONDER, Agency.FIRE, SourceKind.FIRE),
        (Role.RESPONDER, Agency.POLICE, SourceKind.POLICE),
        (Role.SAFEGUARDING, Agency.HOUSING, SourceKind.HOUSING),
    ],
)
def test_the_source_kind_follows_the_role_or_for_responders_the_agency(role, agency, kind):
    assert source_kind(Principal("x-1", role, agency)) == kind
