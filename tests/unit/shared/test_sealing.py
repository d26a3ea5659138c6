"""Sealing people (services/shared/sealing.py): AES-256-GCM bound to its incident and field."""

from __future__ import annotations

import base64
import uuid

import pytest

from services.shared import events as ev, sealing
from services.shared.ids import DerivedIds
from services.intake.validation import Rejection, appended_fact
from services.shared.auth import Principal, Role
from tests import factories as f

PEOPLE = (ev.Person(role="victim", name="Ada Example", age=40), ev.Person(role="witness", description="in a red coat"))


def test_a_sealed_value_opens_with_its_key_and_incident_to_the_same_people():
    key, incident = sealing.new_key(), uuid.uuid4()
    sealed = sealing.seal_people(key, incident, PEOPLE)
    assert "Ada" not in sealed.model_dump_json()
    assert sealing.open_people(key, incident, sealed) == [p.model_dump(mode="json", exclude_none=True) for p in PEOPLE]
    assert sealing.open_people(key, incident, sealed.model_dump()) == sealing.open_people(key, incident, sealed)


def test_each_seal_has_its_own_nonce():
    key, incident = sealing.new_key(), uuid.uuid4()
    assert sealing.seal_people(key, incident, PEOPLE).sealed != sealing.seal_people(key, incident, PEOPLE).sealed


@pytest.mark.parametrize("how", ["another key", "another incident", "a flipped bit"])
def test_a_seal_does_not_open_with_another_key_incident_or_a_changed_byte(how):
    key, incident = sealing.new_key(), uuid.uuid4()
    sealed = sealing.seal_people(key, incident, PEOPLE)
    if how == "another key":
        key = sealing.new_key()
    elif how == "another incident":
        incident = uuid.uuid4()
    else:
        raw = bytearray(base64.urlsafe_b64decode(sealed.sealed + "=" * (-len(sealed.sealed) % 4)))
        raw[-1] ^= 1
        sealed = ev.SealedPeople(sealed=base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())
    with pytest.raises(sealing.Unsealable, match="people"):
        sealing.open_people(key, incident, sealed)


def test_a_sealed_fact_is_still_the_same_fact_and_reads_back_from_its_json():
    report = f.reported(people=PEOPLE)
    assert sealing.needs_sealing(report) and not sealing.needs_sealing(f.reported())
    sealed = sealing.sealed(report, sealing.new_key())
    assert not sealing.needs_sealing(sealed) and sealing.is_sealed(sealed.people_sealed) and sealed.people == ()
    again = ev.IncidentReported.model_validate_json(sealed.model_dump_json())
    assert again == sealed and again.event_id == report.event_id
    assert "Ada" not in sealed.model_dump_json()


def test_intake_refuses_a_body_whose_people_come_sealed():
    principal = Principal(subject="op-17", role=Role.CONTROL_ROOM, agency=ev.Agency.COUNCIL)
    body = {"event_type": "IncidentUpdated", "occurred_at": "2026-11-20T22:00:00Z",
            "people_sealed": {"alg": "A256GCM", "sealed": "A" * 60}}
    with pytest.raises(Rejection) as refused:
        appended_fact(body, principal, uuid.uuid4(), now=f.T0, ids=DerivedIds(b"test-key"))
    assert refused.value.status == 422 and refused.value.problems[0][0] == "people_sealed"
