"""schemas/ is what the models say, and serialised events validate against it
with an independent validator (jsonschema): the consumer form exactly (every field the
codec writes is listed and required), the input form for what a partner system sends."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import jsonschema
import pytest

from services.shared import events as ev
from services.shared.codec import encode
from services.shared.schemas import HEADERS_FILE, INDEX_FILE, SCHEMAS_DIR, consumer_filename, render, schema_documents
from services.shared.settings import REPO_ROOT
from services.shared.topics import TopicCatalog
from tests import factories as f


def test_committed_schemas_match_the_models():
    expected = {name: render(doc) for name, doc in schema_documents().items()}
    committed = {p.name: p.read_text() for p in SCHEMAS_DIR.glob("*.json")}
    assert committed.keys() == expected.keys(), "run `muster schemas export` and commit schemas/"
    for name in expected:
        assert committed[name] == expected[name], f"{name} drifted: run `muster schemas export`"


def _validator(event_type: str, form: str = "json", version: int = 1) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / f"{event_type}.v{version}.{form}").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _samples() -> list[ev.Event]:
    iid = uuid.uuid4()
    return [
        f.reported(incident_id=iid, hazards=("fire", "smoke"), agencies_required=("fire",),
                   casualties=ev.Casualties(serious=2), police_grading="evidenced"),
        f.fact(ev.IncidentUpdated, iid, severity=5),
        f.fact(ev.IncidentAcknowledged, iid, acknowledged_by="op-1"),
        f.fact(ev.ResponderDispatched, iid, agency="fire", callsign="F21"),
        f.fact(ev.ResponderArrived, iid, agency="fire", callsign="F21"),
        f.fact(ev.IncidentStatusChanged, iid, status="resolved"),
        f.fact(ev.IncidentLinked, iid, lead_incident_id=uuid.uuid4()),
        f.fact(ev.NoteAdded, iid, text="note"),
        f.fact(ev.MajorIncidentDeclared, iid, declared_by="gold-1", agency="fire"),
        f.raised(iid, cap_xml="<alert/>"),
        f.stood_down(iid, levels=(1, 3), agencies=("fire",), cap_xml=None),
        ev.TensionLevelChanged(
            occurred_at=f.T0, source=f.source("system", "tension", None), ward_code=f.WHITECHAPEL,
            ward_name="Whitechapel", old_level="normal", new_level="elevated", score=2.5, observed=10, expected=4,
            window="24h/1h", window_start=f.T0, window_end=f.T0,
            top_contributors=(ev.TensionContribution(category="hate_incident", weighted=6, count=3, incident_ids=(iid,)),),
        ),
        ev.TensionLevelChangedV1.of(ev.TensionLevelChanged(
            occurred_at=f.T0, source=f.source("system", "tension", None), ward_code=f.WHITECHAPEL,
            ward_name="Whitechapel", old_level="watch", new_level="high", score=3.6, observed=14, expected=4,
            window="24h/1h", window_start=f.T0, window_end=f.T0, early=True,
        )),
        ev.PlannedEventRegistered(
            planned_event_id=iid, kind="march", name="A march", wards=(f.WHITECHAPEL,), route=True, starts_at=f.T0,
            ends_at=f.T0 + timedelta(hours=3), expected_uplift={"protest_or_gathering": 4}, contentious=True,
            occurred_at=f.T0, source=f.source("control_room", "op-1", "council"),
        ),
        ev.PlannedEventCancelled(planned_event_id=iid, occurred_at=f.T0, source=f.source("control_room", "op-1", "council")),
        ev.TensionSilenced(
            silence_id=iid, ward_code=f.WHITECHAPEL, category="noise", until=f.T0 + timedelta(hours=2), reason="works",
            occurred_at=f.T0, source=f.source("control_room", "op-1", "council"),
        ),
    ]


@pytest.mark.parametrize("event", _samples(), ids=lambda e: e.event_type)
def test_a_serialised_event_validates_against_its_schema(event):
    document = json.loads(encode(event).value)
    _validator(event.event_type, version=event.schema_version).validate(document)


@pytest.mark.parametrize("event", _samples(), ids=lambda e: e.event_type)
def test_the_consumer_form_lists_and_requires_exactly_what_is_written(event):
    document = json.loads(encode(event).value)
    schema = json.loads((SCHEMAS_DIR / consumer_filename(event.event_type, event.schema_version)).read_text())
    assert set(schema["required"]) == set(schema["properties"]) == set(document)


def test_the_consumer_form_makes_nullable_explicit_and_the_envelope_required():
    schema = json.loads((SCHEMAS_DIR / "EscalationRaised.v1.json").read_text())
    for field in ("event_id", "event_type", "schema_version", "mode", "recorded_at", "classification", "cap_xml"):
        assert field in schema["required"], field
    assert {"type": "null"} in schema["properties"]["cap_xml"]["anyOf"]
    assert "anyOf" not in schema["properties"]["event_id"]


def test_a_consumer_form_rejects_a_record_missing_a_field_that_is_always_written():
    document = json.loads(encode(_samples()[0]).value)
    del document["event_id"]
    with pytest.raises(jsonschema.ValidationError, match="event_id"):
        _validator("IncidentReported").validate(document)


def test_the_input_form_takes_what_intake_fills_left_out_but_not_the_event_type():
    document = json.loads(encode(f.reported()).value)
    for field in ("event_id", "recorded_at", "schema_version", "source", "mode", "classification", "casualties",
                  "hazards", "agencies_required", "police_grading", "people"):
        del document[field]
    _validator("IncidentReported", "input.json").validate(document)
    del document["event_type"]
    with pytest.raises(jsonschema.ValidationError, match="event_type"):
        _validator("IncidentReported", "input.json").validate(document)


def test_only_facts_a_partner_may_produce_have_an_input_form():
    inputs = {p.name.split(".")[0] for p in SCHEMAS_DIR.glob("*.input.json")}
    assert inputs == {cls.model_fields["event_type"].default for cls in ev.INCIDENT_FACTS}


def test_every_record_header_and_key_validates_against_the_header_and_key_schemas():
    headers = jsonschema.Draft202012Validator(json.loads((SCHEMAS_DIR / HEADERS_FILE).read_text()))
    index = json.loads((SCHEMAS_DIR / INDEX_FILE).read_text())
    catalog = TopicCatalog.load(REPO_ROOT / "topics.yaml")
    for event in _samples():
        record = encode(event)
        headers.validate({k: v.decode() for k, v in record.headers})
        entry = index["event_types"][event.event_type][str(event.schema_version)]
        assert (SCHEMAS_DIR / entry["schema"]).exists()
        for topic in entry["topics"]:
            key_schema = json.loads((SCHEMAS_DIR / index["keys"][topic]).read_text())
            jsonschema.Draft202012Validator(key_schema, format_checker=jsonschema.FormatChecker()).validate(
                record.key.decode()
            )
        assert set(entry["topics"]) == {t.name for t in catalog if event.event_type in t.event_types}


def test_a_schema_rejects_what_the_model_rejects():
    document = json.loads(encode(f.reported()).value)
    document["severity"] = 7
    with pytest.raises(jsonschema.ValidationError):
        _validator("IncidentReported").validate(document)


def test_a_dead_letter_validates_against_its_schema():
    dl = ev.DeadLetter.of(service="projector", topic="t", partition=0, offset=5, error=ValueError("bad"), key=b"k", value=b"v")
    _validator("DeadLetter").validate(json.loads(encode(dl).value))
