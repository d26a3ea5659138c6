"""The ids intake derives are keyed (services/intake/ids.py), and intake refuses, beyond loopback,
to derive them under the development key, a placeholder or a short key."""

from __future__ import annotations

import uuid

import pytest

from services.intake.app import check_config
from services.shared.ids import DerivedIds, keyed_uuid
from services.shared.auth import AuthConfigError
from services.shared.settings import Settings

REAL_JWT = "j" * 40
REAL_ID_KEY = "an id key of this deployment, 32 bytes or more"


def test_a_keyed_id_is_stable_per_key_and_input_and_a_version_8_uuid():
    one = keyed_uuid(b"k" * 32, "incident", "e-1")
    assert one == keyed_uuid(b"k" * 32, "incident", "e-1")
    assert len({one, keyed_uuid(b"k" * 32, "incident", "e-2"), keyed_uuid(b"K" * 32, "incident", "e-1")}) == 3
    assert (one.version, one.variant) == (8, uuid.RFC_4122)


def test_the_event_id_of_a_key_is_per_caller_and_position_and_the_incident_id_per_event():
    ids = DerivedIds(REAL_ID_KEY)
    assert ids.event_id_for_key("op-17", "k-1") == ids.event_id_for_key("op-17", "k-1")
    assert len({ids.event_id_for_key("op-17", "k-1"), ids.event_id_for_key("op-18", "k-1"),
                ids.event_id_for_key("op-17", "k-1", 0), ids.event_id_for_key("op-17", "k-1", 1)}) == 4
    event_id = uuid.uuid4()
    assert ids.incident_id_for(event_id) == DerivedIds(REAL_ID_KEY.encode()).incident_id_for(event_id)
    assert ids.incident_id_for(event_id) != DerivedIds(REAL_ID_KEY + "!").incident_id_for(event_id)


@pytest.mark.parametrize("key", [None, "changeme", "REPLACE-ME", "short-but-not-a-placeholder"])
def test_intake_beyond_loopback_refuses_a_development_placeholder_or_short_id_key(key):
    fields = {"jwt_secret": REAL_JWT, "intake_host": "0.0.0.0"}
    if key is not None:
        fields["intake_id_key"] = key
    with pytest.raises(AuthConfigError, match="MUSTER_INTAKE_ID_KEY"):
        check_config(Settings(**fields))


def test_intake_accepts_a_real_id_key_beyond_loopback_and_the_development_one_on_loopback():
    check_config(Settings(jwt_secret=REAL_JWT, intake_host="0.0.0.0", intake_id_key=REAL_ID_KEY))
    check_config(Settings(intake_host="127.0.0.1"))


def test_a_planned_events_or_silences_id_is_keyed_and_follows_from_its_event_id():
    event_id = uuid.uuid4()
    one, other = DerivedIds(b"k" * 32), DerivedIds(b"j" * 32)
    assert one.item_id_for("planned_event_id", event_id) == one.item_id_for("planned_event_id", event_id)
    assert one.item_id_for("planned_event_id", event_id) != other.item_id_for("planned_event_id", event_id)
    assert one.item_id_for("planned_event_id", event_id) != one.item_id_for("silence_id", event_id)
