"""From a request body and the caller to an event: what intake fills and what it refuses."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from services.shared.ids import DerivedIds
from services.intake.validation import Rejection, appended_fact, batch_item, new_incident, parse_json
from services.shared.auth import Principal, Role
from services.shared.events import Agency, Classification, IncidentReported, NoteAdded, SourceKind
from tests.factories import POPLAR

NOW = datetime(2026, 11, 20, 22, 0, tzinfo=timezone.utc)
OPERATOR = Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)
IDS = DerivedIds(b"a test deployment's id key, 32 bytes or more")
CCTV = Principal("cam-desk-2", Role.CCTV_OPERATOR, Agency.COUNCIL)


def report(**overrides) -> dict:
    body = {
        "category": "fire",
        "severity": 3,
        "location": {"ward_code": POPLAR},
        "description": "Smoke from a bin store",
        "occurred_at": "2026-11-20T21:55:00Z",
    }
    body.update(overrides)
    return body


def rejection(call) -> Rejection:
    with pytest.raises(Rejection) as caught:
        call()
    return caught.value


def test_a_new_incident_gets_its_source_from_the_token_and_recorded_at_now():
    event = new_incident(report(), OPERATOR, now=NOW, ids=IDS)
    assert isinstance(event, IncidentReported)
    assert (event.source.kind, event.source.id, event.source.agency) == (SourceKind.CONTROL_ROOM, "op-17", Agency.COUNCIL)
    assert event.recorded_at == NOW


def test_a_supplied_recorded_at_is_replaced_by_the_time_intake_accepted_it():
    event = new_incident(report(recorded_at="2020-01-01T00:00:00Z"), OPERATOR, now=NOW, ids=IDS)
    assert event.recorded_at == NOW


def test_a_new_incidents_id_follows_from_its_event_id():
    event_id = str(uuid.uuid4())
    first = new_incident(report(event_id=event_id), OPERATOR, now=NOW, ids=IDS)
    again = new_incident(report(event_id=event_id), OPERATOR, now=NOW, ids=IDS)
    assert first.incident_id == again.incident_id and str(first.event_id) == event_id


def test_the_same_idempotency_key_from_the_same_caller_maps_to_the_same_event_id():
    first = new_incident(report(), OPERATOR, now=NOW, ids=IDS, idempotency_key="k-1")
    again = new_incident(report(), OPERATOR, now=NOW, ids=IDS, idempotency_key="k-1")
    other_key = new_incident(report(), OPERATOR, now=NOW, ids=IDS, idempotency_key="k-2")
    other_caller = new_incident(report(), CCTV, now=NOW, ids=IDS, idempotency_key="k-1")
    assert first.event_id == again.event_id
    assert len({first.event_id, other_key.event_id, other_caller.event_id}) == 3


def test_the_derived_ids_depend_on_the_deployments_key_so_nobody_without_it_can_compute_them():
    """A caller who knows another's Idempotency-Key (or a report's event_id) cannot compute the event_id
    or the incident id intake derives from it (red-team probe: an unkeyed derivation let them be
    reported first): under another key both differ, and neither is the unkeyed name-based UUID."""
    from services.shared.events import derived_event_id

    other = DerivedIds(b"another deployment's id key, as long as it must be")
    ours, theirs = (new_incident(report(), OPERATOR, now=NOW, ids=k, idempotency_key="k-1") for k in (IDS, other))
    assert ours.event_id != theirs.event_id and ours.incident_id != theirs.incident_id
    assert ours.event_id != derived_event_id("idempotency-key", OPERATOR.subject, "k-1")
    assert ours.incident_id != derived_event_id("incident", ours.event_id)
    assert ours.incident_id == IDS.incident_id_for(ours.event_id)  # stable: a retry names the same incident
    assert (ours.event_id.version, ours.incident_id.version) == (8, 8)  # RFC 9562: the application's own bits


def test_without_event_id_or_key_each_request_is_a_new_event():
    assert new_incident(report(), OPERATOR, now=NOW, ids=IDS).event_id != new_incident(report(), OPERATOR, now=NOW, ids=IDS).event_id


def test_a_new_incident_may_not_name_its_incident_id():
    problem = rejection(lambda: new_incident(report(incident_id=str(uuid.uuid4())), OPERATOR, now=NOW, ids=IDS))
    assert problem.status == 422 and problem.problems[0][0] == "incident_id"


def test_a_sensitive_category_cannot_be_lowered_to_official():
    event = new_incident(report(category="domestic_abuse", classification="OFFICIAL"), OPERATOR, now=NOW, ids=IDS)
    assert event.classification is Classification.OFFICIAL_SENSITIVE


def test_every_bad_field_is_named_with_its_problem():
    body = report(severity=9, location={"ward_code": "E05000000"}, occurred_at="2026-11-20T21:55:00", colour="red")
    del body["description"]
    problem = rejection(lambda: new_incident(body, OPERATOR, now=NOW, ids=IDS))
    fields = {field for field, _ in problem.problems}
    assert problem.status == 422
    assert fields == {"severity", "location.ward_code", "occurred_at", "description", "colour"}
    assert "unknown ward code" in dict(problem.problems)["location.ward_code"]


def test_a_body_that_is_not_json_or_not_an_object_is_refused():
    assert rejection(lambda: parse_json(b"{nope")).problems[0][0] == "(body)"
    assert rejection(lambda: new_incident([1, 2], OPERATOR, now=NOW, ids=IDS)).status == 422


def test_a_role_that_may_not_post_the_type_gets_403_before_field_validation():
    problem = rejection(lambda: new_incident({"event_type": "IncidentReported"}, Principal("a-1", Role.ANALYST, Agency.COUNCIL), now=NOW, ids=IDS))
    assert (problem.status, problem.reason) == (403, "forbidden")


@pytest.mark.parametrize("source", [
    {"kind": "police", "id": "pc-1", "agency": "police"},  # another agency
    {"kind": "cctv", "id": "camera-12"},  # another id than the token's subject
    {"kind": "police", "id": "cam-desk-2"},  # another kind than the role's
    {"kind": "cctv", "id": "cam-desk-2", "agency": "council", "extra": 1},
    "cctv",
])
def test_a_body_naming_another_source_is_refused_naming_source(source):
    problem = rejection(lambda: new_incident(report(source=source), CCTV, now=NOW, ids=IDS))
    assert problem.status == 403 and problem.problems[0][0] == "source"


def test_a_source_the_same_as_the_tokens_is_taken_and_an_omitted_one_filled():
    for body in (report(source={"kind": "cctv", "id": "cam-desk-2"}), report()):
        event = new_incident(body, CCTV, now=NOW, ids=IDS)
        assert (event.source.kind, event.source.id, event.source.agency) == (SourceKind.CCTV, "cam-desk-2", Agency.COUNCIL)


@pytest.mark.parametrize(("event_type", "field", "value"), [
    ("IncidentAcknowledged", "acknowledged_by", "someone-else"),
    ("MajorIncidentDeclared", "declared_by", "gold-commander"),
    ("MajorIncidentDeclared", "agency", "fire"),
    ("ResponderDispatched", "agency", "fire"),
])
def test_the_acting_person_and_agency_are_the_callers(event_type, field, value):
    principal = Principal("pc-9", Role.RESPONDER, Agency.POLICE)
    body = {"event_type": event_type, "occurred_at": NOW.isoformat(), field: value}
    if event_type == "ResponderDispatched":
        body["callsign"] = "E21"
    problem = rejection(lambda: appended_fact(body, principal, uuid.uuid4(), now=NOW, ids=IDS))
    assert problem.status == 403 and problem.problems[0][0] == field
    del body[field]
    event = appended_fact(body, principal, uuid.uuid4(), now=NOW, ids=IDS)
    assert getattr(event, field) in ("pc-9", Agency.POLICE)


@pytest.mark.parametrize("text", ["bell\x07", "nul\x00", "cr\r", "del\x7f", "c1\x85", "bidi ok \u202e but \x1b"])
def test_control_characters_other_than_newline_and_tab_are_refused_naming_the_field(text):
    import orjson

    from services.intake.validation import parse_json

    body = orjson.dumps({"location": {"ward_code": "E05009331", "address": text}})
    problem = rejection(lambda: parse_json(body))
    assert (problem.status, problem.problems[0][0]) == (422, "location.address")
    assert "control characters" in problem.problems[0][1]


def test_newline_and_tab_are_fine_and_a_raw_c1_control_is_caught():
    from services.intake.validation import parse_json

    assert parse_json(b'{"description": "line one\\nline\\ttwo"}')["description"] == "line one\nline\ttwo"
    problem = rejection(lambda: parse_json('{"text": "a\u0085b"}'.encode()))
    assert problem.problems[0][0] == "text"


@pytest.mark.parametrize("role, agency, allowed", [
    (Role.ENFORCEMENT_OFFICER, Agency.COUNCIL, False), (Role.CCTV_OPERATOR, Agency.COUNCIL, False),
    (Role.CCTV_OPERATOR, Agency.VOLUNTARY, False), (Role.RESPONDER, Agency.POLICE, True),
    (Role.SAFEGUARDING, Agency.COUNCIL, True), (Role.CONTROL_ROOM, Agency.COUNCIL, True), (Role.ADMIN, Agency.COUNCIL, True),
])
def test_people_in_a_report_are_for_the_operational_roles_only(role, agency, allowed):
    """An enforcement officer's or a CCTV operator's report named people (sealed onto the topic),
    which an update of theirs may not (red-team probe, 2026-12-04): 403 naming people, on the single
    and the batch endpoint alike."""
    from services.intake.validation import batch_item

    principal = Principal("caller-1", role, agency)
    body = {"category": "domestic_abuse", "severity": 3, "location": {"ward_code": "E05009331"},
            "description": "Shouting heard", "occurred_at": NOW.isoformat(), "people": [{"role": "victim", "age": 30}]}
    item = {**body, "event_type": "IncidentReported", "incident_id": str(uuid.uuid4())}
    if allowed:
        assert new_incident(dict(body), principal, now=NOW, ids=IDS).people[0].age == 30
        assert batch_item(item, principal, now=NOW, ids=IDS).people
        return
    for build in (lambda: new_incident(dict(body), principal, now=NOW, ids=IDS),
                  lambda: batch_item(dict(item), principal, now=NOW, ids=IDS)):
        problem = rejection(build)
        assert (problem.status, problem.problems[0][0]) == (403, "people")
    assert new_incident({**body, "people": []}, principal, now=NOW, ids=IDS).people == ()


def test_a_body_nested_as_deep_as_json_allows_is_a_422_naming_the_path_not_a_500():
    """The walk for control characters recursed: 1,000 levels was a RecursionError (red-team probe)."""
    from services.intake.validation import parse_json

    depth = 1000
    body = b'{"a":' * depth + b'"x\u0007"' + b"}" * depth
    problem = rejection(lambda: parse_json(body))
    assert (problem.status, problem.problems[0][0]) == (422, ".".join(["a"] * depth))
    clean = b'{"a":' * depth + b'"x\u00e9"' + b"}" * depth
    assert parse_json(clean)["a"]["a"]["a"] is not None


def test_the_first_control_character_in_document_order_is_named():
    from services.intake.validation import control_character_at

    assert control_character_at({"b": ["ok", {"c": "x\x07"}], "a\x01": "y"}) == "b.1.c"
    assert control_character_at({"b": "ok", "k\x1b": "fine", "z": "\x00"}) == "k\x1b"
    assert control_character_at(["ok", ["fine", "bad\x7f"]]) == "1.1"
    assert control_character_at({"text": "line\nand\ttab"}) is None


def test_an_appended_fact_takes_the_incident_id_from_the_path():
    incident_id = uuid.uuid4()
    body = {"event_type": "NoteAdded", "text": "Caller rang back", "occurred_at": "2026-11-20T21:58:00Z"}
    event = appended_fact(body, OPERATOR, incident_id, now=NOW, ids=IDS)
    assert isinstance(event, NoteAdded) and event.incident_id == incident_id


def test_an_appended_fact_may_name_its_incident_in_any_form_of_its_id():
    incident_id = uuid.uuid4()
    body = {"event_type": "NoteAdded", "text": "x", "occurred_at": "2026-11-20T21:58:00Z",
            "incident_id": str(incident_id).upper()}
    assert appended_fact(body, OPERATOR, incident_id, now=NOW, ids=IDS).incident_id == incident_id
    problem = rejection(lambda: appended_fact({**body, "incident_id": "not-a-uuid"}, OPERATOR, incident_id, now=NOW,
                                              ids=IDS))
    assert problem.problems[0][0] == "incident_id"


def test_an_appended_fact_naming_another_incident_is_refused():
    body = {"event_type": "NoteAdded", "text": "x", "occurred_at": "2026-11-20T21:58:00Z", "incident_id": str(uuid.uuid4())}
    assert rejection(lambda: appended_fact(body, OPERATOR, uuid.uuid4(), now=NOW, ids=IDS)).problems[0][0] == "incident_id"


@pytest.mark.parametrize("event_type", ["IncidentReported", "EscalationRaised", "Whatever", None])
def test_an_appended_fact_must_be_an_incident_fact_other_than_a_report(event_type):
    body = {"event_type": event_type, "occurred_at": "2026-11-20T21:58:00Z"}
    problem = rejection(lambda: appended_fact(body, OPERATOR, uuid.uuid4(), now=NOW, ids=IDS))
    assert problem.status == 422 and problem.problems[0][0] == "event_type"


def test_a_batch_item_needs_its_incident_id():
    body = {"event_type": "NoteAdded", "text": "x", "occurred_at": "2026-11-20T21:58:00Z"}
    assert rejection(lambda: batch_item(body, OPERATOR, now=NOW, ids=IDS)).problems == (("incident_id", "Field required"),)


def test_batch_items_with_one_idempotency_key_get_distinct_event_ids_by_position():
    body = {"event_type": "NoteAdded", "text": "x", "occurred_at": "2026-11-20T21:58:00Z", "incident_id": str(uuid.uuid4())}
    ids = {batch_item(body, OPERATOR, now=NOW, ids=IDS, idempotency_key="b-1", index=i).event_id for i in range(3)}
    assert len(ids) == 3
    assert batch_item(body, OPERATOR, now=NOW, ids=IDS, idempotency_key="b-1", index=0).event_id in ids


def test_a_rejected_batch_items_fields_are_prefixed_with_its_position():
    problem = rejection(lambda: batch_item({"event_type": "NoteAdded"}, OPERATOR, now=NOW, ids=IDS)).prefixed("events.4")
    assert problem.problems[0][0] == "events.4.incident_id"
