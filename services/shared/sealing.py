"""Sealing people's details with an incident's data key (pure; docs/security.md).

The restricted field of an incident fact, `people`, travels on the incidents topic sealed:
AES-256-GCM (pyca `cryptography`'s AESGCM) under the incident's own 256-bit data key, a
fresh 96-bit random nonce per sealed value, and the incident id and field name as associated
data, so a sealed value moved to another incident or field does not open. The data keys are
held by the key service in PostgreSQL (schema `muster_keys`, services/shared/keys.py);
deleting an incident's key erases its people from every copy of the log at once.

Wire form: `"people_sealed": {"alg": "A256GCM", "sealed": base64url(nonce || ciphertext || tag)}`,
and `people` empty (`[]` in a report, absent from an update), as the released schema has it.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterable

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.shared import events as ev

KEY_BYTES = 32
NONCE_BYTES = 12
FIELD = "people"  # the one sealed field (docs/security.md says why only it)
SEALED_FIELD = "people_sealed"  # where a fact carries it sealed (`people` stays empty: the released schema's type)


class Unsealable(ValueError):
    """A sealed value that does not open with the key given (another incident's, tampered with)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def associated_data(incident_id: uuid.UUID, field: str = FIELD) -> bytes:
    return f"muster/sealed/v1/{incident_id}/{field}".encode()


def seal_people(key: bytes, incident_id: uuid.UUID, people: Iterable[ev.Person]) -> ev.SealedPeople:
    plain = orjson.dumps([p.model_dump(mode="json", exclude_none=True) for p in people])
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, associated_data(incident_id))
    return ev.SealedPeople(sealed=base64.urlsafe_b64encode(sealed).rstrip(b"=").decode())


def open_people(key: bytes, incident_id: uuid.UUID, sealed: ev.SealedPeople | dict) -> list[dict]:
    """The people a sealed value holds, as JSON objects (the Person fields given)."""
    text = sealed.sealed if isinstance(sealed, ev.SealedPeople) else sealed["sealed"]
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data(incident_id))
    except InvalidTag:
        raise Unsealable(f"{FIELD}: the sealed value does not open with incident {incident_id}'s key") from None
    return orjson.loads(plain)


def is_sealed(value: object) -> bool:
    """A stored or published `people` value that is sealed (a JSON object with `sealed`)."""
    return isinstance(value, ev.SealedPeople) or (isinstance(value, dict) and "sealed" in value)


def needs_sealing(event: ev.Event) -> bool:
    """An incident fact with people in the clear (an empty list names nobody: nothing to seal)."""
    people = getattr(event, FIELD, None)
    return isinstance(people, tuple) and len(people) > 0


def sealed(event: ev.IncidentEvent, key: bytes) -> ev.IncidentEvent:
    """The same fact with its people sealed under `key` (into people_sealed; people left empty)."""
    emptied = () if isinstance(event, ev.IncidentReported) else None
    return event.model_copy(update={FIELD: emptied, SEALED_FIELD: seal_people(key, event.incident_id, getattr(event, FIELD))})
