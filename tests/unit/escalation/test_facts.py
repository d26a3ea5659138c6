import uuid

import pytest

from services.escalation.facts import read_fact
from services.escalation.state import fold
from services.shared import codec
from services.shared import events as ev
from tests.unit.escalation.helpers import T0, fact, poplar_fire, reported


def _both(event):
    value = codec.encode(event).value
    return codec.decode(value), read_fact(value)


@pytest.mark.parametrize("make", [
    lambda: poplar_fire(),
    lambda: reported(category="domestic_abuse", severity=3),
    lambda: fact(ev.IncidentUpdated, uuid.uuid4(), severity=5, hazards=("gas_leak",)),
    lambda: fact(ev.IncidentAcknowledged, uuid.uuid4(), acknowledged_by="op-1"),
    lambda: fact(ev.ResponderArrived, uuid.uuid4(), agency="fire", callsign="F1"),
    lambda: fact(ev.IncidentStatusChanged, uuid.uuid4(), status="resolved"),
    lambda: fact(ev.IncidentLinked, uuid.uuid4(), lead_incident_id=uuid.uuid4()),
    lambda: fact(ev.NoteAdded, uuid.uuid4(), text="a note", classification="OFFICIAL-SENSITIVE"),
    lambda: fact(ev.MajorIncidentDeclared, uuid.uuid4(), declared_by="insp-9", agency="police"),
])
def test_the_narrow_view_folds_to_the_same_state_as_the_full_event(make):
    full, narrow = _both(make())
    assert fold(None, narrow, 1, 5) == fold(None, full, 1, 5)


def test_a_sensitive_category_keeps_its_classification_floor_in_the_narrow_view():
    value = codec.encode(reported(category="domestic_abuse", severity=3)).value.replace(
        b'"OFFICIAL-SENSITIVE"', b'"OFFICIAL"')
    assert read_fact(value).classification is ev.Classification.OFFICIAL_SENSITIVE


def test_an_unknown_ward_is_poison_naming_the_field():
    value = codec.encode(poplar_fire()).value.replace(poplar_fire().location.ward_code.encode(), b"E05999999")
    with pytest.raises(codec.PoisonRecord, match="ward_code"):
        read_fact(value)


def test_an_event_that_is_not_an_incident_fact_is_poison():
    value = b'{"event_type": "EscalationRaised", "incident_id": "%s"}' % str(uuid.uuid4()).encode()
    with pytest.raises(codec.PoisonRecord, match="event_type"):
        read_fact(value)


def test_an_incident_linked_to_itself_is_poison():
    incident = uuid.uuid4()
    value = codec.encode(fact(ev.IncidentLinked, incident, lead_incident_id=uuid.uuid4())).value
    value = value.replace(b'"lead_incident_id":"', b'"lead_incident_id":"' + str(incident).encode() + b'","x":"')
    with pytest.raises(codec.PoisonRecord, match="itself"):
        read_fact(value)


def test_fields_escalation_does_not_read_are_ignored_not_required():
    narrow = read_fact(codec.encode(reported(occurred_at=T0)).value)
    assert not hasattr(narrow, "description")
