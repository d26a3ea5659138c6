"""Every fact checked against the caller and the incident it is about. Pure, no I/O.

`check(principal, event, given, record, lead)` takes the event built from the body
(validation.py), the fields the body named, intake's registry record of the incident
(registry.py; None: intake never accepted its report) and, for a link, the lead's record.
It returns the event to publish (mode and classification taken from the incident where the
body left them out, a privileged caller's removal of an agency made explicit) or raises a
Rejection:

- 404 when the caller may not see the incident, byte for byte the answer for an id that
  does not exist (NOT_FOUND);
- 409 for a second report of an incident, and for a fact its state refuses (a second link, a
  link to a duplicate, a finished incident's status moved back, a declaration on a finished
  incident or a duplicate);
- 403 when the caller may see it but not make that change (permissions.py), naming the field
  (raising the incident's classification, too, is for some callers only);
- 422 naming `mode` when the fact's mode is not the incident's.
"""

from __future__ import annotations

from collections.abc import Collection

from services.intake import permissions
from services.intake.registry import IncidentRecord
from services.intake.validation import Rejection, invalid
from services.shared import events as ev
from services.shared.access import may_see_incident
from services.shared.auth import Principal

NOT_FOUND = Rejection(404, "not_found", (("incident_id", "no such incident"),))


def conflict(field_path: str, message: str) -> Rejection:
    return Rejection(409, "conflict", ((field_path, message),))


def repeated_report(incident_id: object) -> Rejection:
    return conflict("incident_id", f"incident {incident_id} is already reported: the first report is the only report")


def being_changed(incident_id: object) -> Rejection:
    """Another request's fact about the incident, whose check read the same state, is being recorded
    now (service.Holds): this one is refused rather than checked against the state before it."""
    return conflict("incident_id", f"another change of incident {incident_id} is being recorded now: send this "
                                   "again, to be checked against it")


def state_held(event: ev.IncidentEvent) -> tuple[tuple, tuple] | None:
    """(what this fact's check reads, what it changes that another's check reads), as (aspect,
    incident) pairs: held while it is published and recorded (service.Holds), so that no fact is
    checked against state another one is changing at the same moment. A link reads whether its
    incident and its lead are linked and links its incident; a status change that finishes the
    incident finishes it; a declaration reads whether its incident is finished or linked. None for
    the rest: no check reads what they change (a status change that finishes nothing may go beside
    a close: every reader folds status forward)."""
    kind = event.event_type
    if kind == "IncidentLinked":
        return (("linked", event.incident_id), ("linked", event.lead_incident_id)), (("linked", event.incident_id),)
    if kind == "IncidentStatusChanged" and event.status.terminal:
        return (), (("finished", event.incident_id),)
    if kind == "MajorIncidentDeclared":
        return (("finished", event.incident_id), ("linked", event.incident_id)), ()
    return None


def derived_incident_taken(field_path: str, incident_id: object) -> Rejection:
    """A new incident's id follows from its report's event_id (or Idempotency-Key); found reported by
    another event, it was taken by another caller's report naming it (a batch names its incidents):
    this report is no repeat of it. 409 naming what to send anew, never "already reported"."""
    return conflict(field_path, f"the incident id intake derives from it ({incident_id}) is another report's: "
                                "send this report again with a new one")


def _forbidden(field_path: str, message: str) -> Rejection:
    return Rejection(403, "forbidden", ((field_path, message),))


def visible(principal: Principal, record: IncidentRecord) -> bool:
    return may_see_incident(principal, record.classification, record.reporting_agency, record.agencies_required)


def check(
    principal: Principal, event: ev.IncidentEvent, given: Collection[str], record: IncidentRecord | None,
    lead: IncidentRecord | None = None,
) -> ev.IncidentEvent:
    kind = event.event_type
    if kind == "IncidentReported":
        if record is not None:
            raise repeated_report(event.incident_id)
        return event
    if record is None or not visible(principal, record):
        raise NOT_FOUND
    rel = permissions.relation(principal, record.owners)
    if not permissions.may_write(principal, event.event_type, rel):
        raise _forbidden("event_type", f"a {principal.role.value} of {principal.agency.value} ({rel.value}) "
                                       f"may not post {event.event_type} to this incident")
    if "mode" in given and event.mode.value != record.mode:
        raise invalid("mode", f"is {record.mode} for this incident (fixed by its first report), not {event.mode.value}")
    update: dict = {}
    if "mode" not in given and event.mode.value != record.mode:
        update["mode"] = ev.Mode(record.mode)
    held = ev.Classification(record.classification)
    if event.classification.rank < held.rank:  # never lowered
        update["classification"] = held
    elif event.classification.rank > held.rank and not permissions.may_raise_classification(principal, rel):
        raise _forbidden("classification", f"would raise the incident from {held.value} to {event.classification.value} "
                                           "(the fact's classification, or its category's floor), which narrows who "
                                           "may see it: only the control room, admins and the owning agencies may")
    if kind == "IncidentUpdated":
        update.update(_update_fields(principal, rel, event, record))
    if kind == "IncidentLinked":
        _check_link(principal, event, record, lead)
    elif kind == "IncidentStatusChanged" and record.terminal and not event.status.terminal:
        raise conflict("status", f"incident {event.incident_id} is finished: its status never moves back to "
                                 f"{event.status.value} (every reader folds it forward); report a new incident")
    elif kind == "MajorIncidentDeclared" and (record.terminal or record.lead_incident_id is not None):
        where = ("is finished" if record.terminal else
                 f"is a duplicate of {record.lead_incident_id}: declare on that lead")
        raise conflict("incident_id", f"incident {event.incident_id} {where} (nothing escalates it)")
    return event.model_copy(update=update) if update else event


def _check_link(principal: Principal, event: ev.IncidentLinked, record: IncidentRecord,
                lead: IncidentRecord | None) -> None:
    """A duplicate is linked once, to a lead that is no duplicate itself: escalation stops a linked
    incident's deadlines and keeps its first link, so a second link or a cycle would leave a live
    incident that nothing escalates (red-team probe, 2026-12-04). A finished lead is one: a late
    report of an emergency that is over is its duplicate (the link is for those who may close it)."""
    if lead is None or not visible(principal, lead):
        raise invalid("lead_incident_id", "no such incident")
    if lead.mode != record.mode:
        raise invalid("lead_incident_id", f"the lead incident's mode is {lead.mode}, not {record.mode}")
    if record.lead_incident_id is not None:
        raise conflict("lead_incident_id", f"incident {event.incident_id} is already linked to "
                                           f"{record.lead_incident_id}: the first link stands")
    if lead.lead_incident_id is not None:
        raise conflict("lead_incident_id", f"incident {event.lead_incident_id} is itself a duplicate of "
                                           f"{lead.lead_incident_id}: link to that lead")


def _update_fields(
    principal: Principal, rel: permissions.Relation, event: ev.IncidentUpdated, record: IncidentRecord,
) -> dict:
    """agencies_required only grows and people stay as they are, except for the privileged
    (the control room, admins, the owning agencies' operational roles)."""
    privileged = permissions.privileged(principal, rel)
    if event.people is not None and not privileged:
        raise _forbidden("people", "only the control room, admins and the owning agencies' operational roles "
                                   "may change people")
    if event.agencies_removed is not None and not privileged:
        raise _forbidden("agencies_removed", "only the control room, admins and the owning agencies' "
                                             "operational roles may remove an agency")
    if event.agencies_required is None:
        return {}
    given = {a.value for a in event.agencies_required}
    dropped = [a for a in record.agencies_required if a not in given]
    if not dropped:
        return {}
    if not privileged:
        raise _forbidden("agencies_required", f"may only grow: {', '.join(dropped)} would be removed; only the "
                                              "control room, admins and the owning agencies' operational roles "
                                              "may remove an agency")
    removed = ev.agencies_union(event.agencies_removed, dropped)
    return {"agencies_removed": removed}
