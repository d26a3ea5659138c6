"""One definition of each shared meaning: the event registry, the status rule, the ward list
in force, the YAML error style, the narrow-fact reader."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from services.escalation.state import fold as escalation_fold
from services.projector import rules as projector
from services.shared import events as ev
from services.shared import wards
from services.shared.codec import PoisonRecord
from services.shared.narrow import NarrowFact, reader
from services.shared.yamlfile import ConfigFileError, load
from tests.factories import BOW_EAST, T0, fact, reported

S = ev.IncidentStatus


def test_the_registry_lists_each_event_type_once_and_the_unions_follow_it():
    assert set(ev.INCIDENT_FACT_TYPES) == {ev.event_type_of(c) for c in ev.INCIDENT_FACTS}
    assert set(ev.EVENT_TYPES) == set(ev.INCIDENT_FACT_TYPES) | {ev.event_type_of(c) for c in (*ev.DERIVED, *ev.CALENDAR_FACTS)}
    assert set(ev.IncidentFact.__args__) == set(ev.INCIDENT_FACTS)


@pytest.mark.parametrize(("current", "new", "later", "advances"), [
    (S.DISPATCHED, S.ACKNOWLEDGED, True, False),  # a lower rank never
    (S.ACKNOWLEDGED, S.RESOLVED, False, True),  # a higher rank always, whenever it happened
    (S.RESOLVED, S.FALSE_ALARM, True, True),  # the same rank: the later in event time
    (S.RESOLVED, S.FALSE_ALARM, False, False),
    (S.RESOLVED, S.RESOLVED, True, False),
])
def test_status_never_moves_backwards_and_a_tie_goes_to_the_later_fact(current, new, later, advances):
    at = T0 + timedelta(minutes=5 if later else -5)
    assert new.advances_over(current, T0, at) is advances


def test_escalation_and_the_projector_fold_a_late_tie_to_the_same_status():
    report = reported()
    resolved = fact(ev.IncidentStatusChanged, report.incident_id, T0 + timedelta(minutes=10), status="resolved")
    false_alarm = fact(ev.IncidentStatusChanged, report.incident_id, T0 + timedelta(minutes=20), status="false_alarm")
    for order in ((report, resolved, false_alarm), (report, false_alarm, resolved)):
        state = None
        for f in order:
            state = escalation_fold(state, f)
        assert state.status is S.FALSE_ALARM
        assert projector.fold(order)[report.incident_id].status == "false_alarm"


def test_the_ward_list_in_force_is_the_one_given_at_start_up():
    location = {"ward_code": BOW_EAST}
    ev.Location.model_validate(location)
    packaged = wards.load_wards()
    try:
        wards.use_wards({code: w for code, w in packaged.items() if code != BOW_EAST})
        with pytest.raises(ValidationError, match="unknown ward code 'E05009319'"):
            ev.Location.model_validate(location)
    finally:
        wards.use_wards(packaged)


class _Item(BaseModel):
    id: str
    size: int


class _File(BaseModel):
    name: str
    items: list[_Item]


def test_a_bad_yaml_file_names_the_member_by_id_and_the_field(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: n\nitems:\n  - {id: big, size: nope}\n")
    with pytest.raises(ConfigFileError, match=r"x.yaml: item 'big' field size: Input should be a valid integer"):
        load(_File, path, what="x file", setting="MUSTER_X", items={"items": "item"})
    with pytest.raises(ConfigFileError, match=r"x file not found: .*missing.yaml \(set MUSTER_X\)"):
        load(_File, tmp_path / "missing.yaml", what="x file", setting="MUSTER_X")


def test_a_narrow_reader_takes_only_incident_fact_types_and_names_the_bad_field():
    class Noted(NarrowFact):
        event_type: Literal["NoteAdded"]

    class Bogus(NarrowFact):
        event_type: Literal["Bogus"]

    with pytest.raises(TypeError, match="Bogus"):
        reader(Bogus)
    read = reader(Noted)
    note = fact(ev.NoteAdded, reported().incident_id, text="free text is never decoded")
    assert read(note.model_dump_json()).incident_id == note.incident_id
    with pytest.raises(PoisonRecord, match="occurred_at"):
        read(b'{"event_type": "NoteAdded", "incident_id": "6f1c2b4e-5d6a-4c3b-9e7f-0a1b2c3d4e5f"}')
