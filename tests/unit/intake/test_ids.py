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


@pytest.mark.parametrize("one, other", [
    (("police", "pc-X/r1"), ("police/pc-X", "r1")),  # a subject and a key may both hold "/"
    (("op-17", "bK/0"), ("op-17", "bK", 0)),  # a single request's key, and a batch's item 0
    (("op-17", "a%2Fb"), ("op-17", "a/b")),  # the escape itself
    (("op-17", "a/b", 1), ("op-17", "a", "b/1")),
])
def test_no_two_inputs_derive_one_event_id(one, other):
    """Red-team probe, 2026-12-06: the parts were joined with "/" unescaped, so subject `police` with
    key `pc-X/r1` derived the event_id (and the report's incident) of subject `police/pc-X` with key
    `r1`, and took them first."""
    ids = DerivedIds(REAL_ID_KEY)
    assert ids.event_id_for_key(*one) != ids.event_id_for_key(*other)


def test_an_input_without_a_slash_or_percent_derives_the_id_it_always_did():
    """Escaping changed no id a retry sent before it could name: the HMAC of the parts joined as they were."""
    import hashlib
    import hmac

    mac = hmac.new(REAL_ID_KEY.encode(), b"idempotency-key/op-17/k-1/0", hashlib.sha256).digest()
    n = (int.from_bytes(mac[:16], "big") & ~(0xF << 76) & ~(0b11 << 62)) | (0x8 << 76) | (0b10 << 62)
    assert DerivedIds(REAL_ID_KEY).event_id_for_key("op-17", "k-1", 0) == uuid.UUID(int=n)


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
