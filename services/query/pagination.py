"""Keyset pagination: an opaque cursor on (occurred_at, incident_id), newest first.

A page holds the rows strictly after the cursor in the order (occurred_at desc,
incident_id desc), so incidents that arrive while a client pages (newer ones, at the top)
neither repeat nor shift the pages it has not read yet.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson


class BadCursor(ValueError):
    """The cursor was not one this API gave out."""


@dataclass(frozen=True, slots=True)
class Cursor:
    occurred_at: datetime
    incident_id: uuid.UUID

    def encode(self) -> str:
        raw = orjson.dumps({"v": 1, "at": self.occurred_at.isoformat(), "id": str(self.incident_id)})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("unknown version")
            at = datetime.fromisoformat(data["at"])
            if at.tzinfo is None:
                raise ValueError("naive time")
            return cls(at, uuid.UUID(data["id"]))
        except (ValueError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
            raise BadCursor(f"cursor: not a cursor this API gave out ({exc.__class__.__name__})") from None


def page(rows: list, limit: int) -> tuple[list, str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor after it (None: the last page)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, Cursor(last["occurred_at"], last["incident_id"]).encode()
