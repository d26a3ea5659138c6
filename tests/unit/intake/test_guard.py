"""guard.check's rules from an incident's state in intake's registry (pure): links, a finished
incident's status, declarations. Each was accepted before (red-team probe, 2026-12-04)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from services.intake import guard, registry
from services.intake.registry import IncidentRecord
from services.intake.validation import Rejection
from services.shared import events as ev
from services.shared.auth import Principal, Role
from services.shared.events import Agency

AT = datetime(2026, 11, 20, 22, 0, tzinfo=timezone.utc)
CONTROL = Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)
SOURCE = ev.Source(kind=ev.SourceKind.CONTROL_ROOM, id="op-17", agency=Agency.COUNCIL)


def record(**fields) -> IncidentRecord:
    return IncidentRecord(uuid.uuid4(), "op-17", "council", "control_room", "op-17", ("fire",), "live", "OFFICIAL",
                          **fields)


def fact(cls, incident: IncidentRecord, **fields):
    return cls(event_id=uuid.uuid4(), occurred_at=AT, recorded_at=AT, source=SOURCE,
               incident_id=incident.incident_id, **fields)


def refused(call) -> Rejection:
    with pytest.raises(Rejection) as caught:
        call()
    return caught.value


def link(incident: IncidentRecord, lead: IncidentRecord | None, lead_id: uuid.UUID | None = None):
    event = fact(ev.IncidentLinked, incident, lead_incident_id=lead_id or lead.incident_id)
    return lambda: guard.check(CONTROL, event, {"lead_incident_id"}, incident, lead)


def test_a_duplicate_links_once_to_a_lead_that_is_no_duplicate_itself_finished_or_not():
    a, b, c = record(), record(), record()
    assert guard.check(CONTROL, fact(ev.IncidentLinked, a, lead_incident_id=b.incident_id), set(), a, b)
    linked_a = registry.applied(a, registry.Change(a.incident_id, lead_incident_id=b.incident_id))
    again = refused(link(linked_a, c))  # a second link: escalation keeps the first
    assert (again.status, again.problems[0][0]) == (409, "lead_incident_id") and str(b.incident_id) in again.detail
    chain = refused(link(c, linked_a))  # to a duplicate: a chain, and then a cycle
    assert chain.status == 409 and "link to that lead" in chain.detail and str(b.incident_id) in chain.detail
    finished = registry.applied(c, registry.Change(c.incident_id, terminal=True))
    assert guard.check(CONTROL, fact(ev.IncidentLinked, b, lead_incident_id=c.incident_id), set(), b, finished)
    assert guard.check(CONTROL, fact(ev.IncidentLinked, finished, lead_incident_id=b.incident_id), set(),
                       finished, b)  # a finished incident may still be marked a duplicate of a live one


def test_the_first_link_stands_in_the_registry_fold():
    a, b, c = record(), record(), record()
    first = registry.applied(a, registry.Change(a.incident_id, lead_incident_id=b.incident_id))
    assert registry.applied(first, registry.Change(a.incident_id, lead_incident_id=c.incident_id)).lead_incident_id \
        == b.incident_id


def test_a_finished_incidents_status_never_moves_back_but_may_move_to_another_finish():
    finished = record(terminal=True)
    reopen = refused(lambda: guard.check(CONTROL, fact(ev.IncidentStatusChanged, finished, status="open"),
                                         {"status"}, finished))
    assert (reopen.status, reopen.problems[0][0]) == (409, "status")
    assert guard.check(CONTROL, fact(ev.IncidentStatusChanged, finished, status="closed"), {"status"}, finished)
    live = record()
    assert guard.check(CONTROL, fact(ev.IncidentStatusChanged, live, status="open"), {"status"}, live)


@pytest.mark.parametrize("state", ["finished", "duplicate"])
def test_a_declaration_on_a_finished_incident_or_a_duplicate_is_409(state):
    lead = record()
    incident = record(terminal=True) if state == "finished" else record(lead_incident_id=lead.incident_id)
    declaration = fact(ev.MajorIncidentDeclared, incident, declared_by="op-17", agency=Agency.COUNCIL)
    problem = refused(lambda: guard.check(CONTROL, declaration, set(), incident))
    assert (problem.status, problem.problems[0][0]) == (409, "incident_id")
    assert guard.check(CONTROL, fact(ev.MajorIncidentDeclared, lead, declared_by="op-17", agency=Agency.COUNCIL),
                       set(), lead)
