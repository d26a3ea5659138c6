"""The ids intake derives, keyed with the deployment's id key (MUSTER_INTAKE_ID_KEY).

Ids follow from what a request says, so that a retry names the same thing: the event_id of
a request sent with an `Idempotency-Key` (per caller, and per position in a batch), and a new
incident's id (from its report's event_id), and a new planned event's or silence's id (from its
registration's event_id). Derived without a key (a name-based UUID), anyone
who can guess a caller's key, or see a report's event_id, could compute them and report that
incident, or send that event_id, first: the caller's report would then be refused. Under a key
only intake holds, they are an HMAC-SHA256 (RFC 2104, hashlib's) of the same inputs, which
nobody without the key can compute: a caller learns its incident's id from intake's answer.

The key is shared by every intake replica and kept across restarts (a retry sent to another
replica, or after a restart, derives the same ids). Changing it changes them: a request sent
before the change and retried after it is a new event. Beyond loopback intake refuses the
development key, a known placeholder and a key shorter than 32 bytes (services/shared/auth.py).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

_VERSION_8 = 0x8 << 76  # RFC 9562 section 5.8: a UUID whose bits are the application's own
_VARIANT = 0b10 << 62


def _part(value: object) -> str:
    """One part, with `%` and `/` escaped: the joined parts then read back only one way (a subject and
    an Idempotency-Key may both hold `/`: subject `police` with key `pc-X/r1` joined as subject
    `police/pc-X` with key `r1` did, and took that caller's event_id and report; red-team probe,
    2026-12-06). A part holding neither joins as before, so its id is unchanged."""
    return str(value).replace("%", "%25").replace("/", "%2F")


def keyed_uuid(key: bytes, *parts: object) -> uuid.UUID:
    """A UUID (version 8) from the HMAC-SHA256 of the parts under `key`: stable, unguessable
    without the key, and one input per UUID (each part escaped: `_part`)."""
    mac = hmac.new(key, "/".join(_part(p) for p in parts).encode(), hashlib.sha256).digest()
    n = int.from_bytes(mac[:16], "big")
    n = (n & ~(0xF << 76) & ~(0b11 << 62)) | _VERSION_8 | _VARIANT
    return uuid.UUID(int=n)


class DerivedIds:
    """The ids intake derives, under one deployment's id key."""

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        self._key = key.encode() if isinstance(key, str) else key

    def event_id_for_key(self, subject: str, idempotency_key: str, *parts: object) -> uuid.UUID:
        """An Idempotency-Key maps to one event_id per caller (and batch position)."""
        return keyed_uuid(self._key, "idempotency-key", subject, idempotency_key, *parts)

    def incident_id_for(self, event_id: uuid.UUID) -> uuid.UUID:
        """A new incident's id follows from its report's event_id, so a retry names the same incident."""
        return keyed_uuid(self._key, "incident", event_id)

    def item_id_for(self, field: str, event_id: uuid.UUID) -> uuid.UUID:
        """A new planned event's or silence's id (`field`: planned_event_id, silence_id) follows from
        its registration's event_id: unkeyed, anyone who saw that event_id could register the id first."""
        return keyed_uuid(self._key, field, event_id)


def from_settings(settings) -> DerivedIds:
    return DerivedIds(settings.intake_id_key.get_secret_value())
