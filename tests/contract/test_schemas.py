"""schemas/ is what the models say, and serialised events validate against it
with an independent validator (jsonschema)."""

from __future__ import annotations

import json
import uuid

import jsonschema
import pytest

from services.shared import events as ev
from services.shared.codec import encode
from services.shared.schemas import SCHEMAS_DIR, render, schema_documents
from tests import factories as f


def test_committed_schemas_match_the_models():
    expected = {name: render(doc) for name, doc in schema_documents().items()}
    committed = {p.name: p.read_text() for p in SCHEMAS_DIR.glob("*.json")}
    assert committed.keys() == expected.keys(), "run `muster schemas export` and commit schemas/"
    for name in expected:
        assert committed[name] == expected[name], f"{name} drifted: run `muster schemas export`"


def _validator(event_type: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / f"{event_type}.v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _samples() -> list[ev.Event]:
    iid = uuid.uuid4()
    methane = ev.Methane(
        major_incident=True, exact_location="Poplar, E05009331", type="fire", hazards=("smoke",),
        access="Via East India Dock Road", number_of_casualties=ev.Casualties(serious=2),
        emergency_services_present=(), emergency_services_required=("fire", "police", "ambulance"),
    )
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
        ev.EscalationRaised(
            event_id=ev.derived_event_id(iid, 3), incident_id=iid, occurred_at=f.T0, source=f.source("system", "escalation", None),
            level=3, level_name="major incident", agencies=("fire", "police", "ambulance"), rule_id="fire-sev5",
            rule_set_version="2026-11-01", reason="severity 5 fire", category="fire", severity=5,
            ward_code=f.POPLAR, methane=methane, cap_xml="<alert/>",
        ),
        ev.EscalationStoodDown(
            incident_id=iid, occurred_at=f.T0, source=f.source("system", "escalation", None), levels=(1, 3),
            agencies=("fire",), reason="resolved", final_status="resolved", rule_set_version="2026-11-01",
        ),
        ev.TensionLevelChanged(
            occurred_at=f.T0, source=f.source("system", "tension", None), ward_code=f.WHITECHAPEL,
            ward_name="Whitechapel", old_level="normal", new_level="elevated", score=2.5, observed=10, expected=4,
            window="24h/1h", window_start=f.T0, window_end=f.T0,
            top_contributors=(ev.TensionContribution(category="hate_incident", weighted=6, count=3, incident_ids=(iid,)),),
        ),
    ]


@pytest.mark.parametrize("event", _samples(), ids=lambda e: e.event_type)
def test_a_serialised_event_validates_against_its_schema(event):
    document = json.loads(encode(event).value)
    _validator(event.event_type).validate(document)


def test_a_schema_rejects_what_the_model_rejects():
    document = json.loads(encode(f.reported()).value)
    document["severity"] = 7
    with pytest.raises(jsonschema.ValidationError):
        _validator("IncidentReported").validate(document)


def test_a_dead_letter_validates_against_its_schema():
    dl = ev.DeadLetter.of(service="projector", topic="t", partition=0, offset=5, error=ValueError("bad"), key=b"k", value=b"v")
    _validator("DeadLetter").validate(json.loads(encode(dl).value))
