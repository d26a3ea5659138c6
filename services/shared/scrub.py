"""What of an unreadable record may go into a dead letter (pure).

A dead letter helps an on-call engineer find and fix the record that failed; it must never
carry people's details or free text (descriptions, notes, addresses, names), which it would
otherwise keep for the dead-letter topic's whole retention, outside the sealing and erasure
of people (docs/security.md). So the value keeps only the envelope and structured fields
named here, every other value is replaced by REMOVED (its path listed), a value that is not a
JSON object is dropped whole, and an error message loses the input values that pydantic and
others quote in it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REMOVED = "[removed]"

# Structured fields that name no person and hold no free text: ids, enums, counts, times.
SAFE_FIELDS = frozenset({
    "event_id", "event_type", "schema_version", "incident_id", "occurred_at", "recorded_at", "source", "kind",
    "id", "agency", "classification", "mode", "category", "severity", "location", "ward_code", "casualties",
    "fatalities", "serious", "minor", "hazards", "agencies_required", "agency_ids", "police_grading", "status",
    "level", "levels", "lead_incident_id", "linked_incident_id", "rule_set_version", "major_incident",
    "acknowledged_at", "ward", "tension_level", "previous_level", "score", "window", "people_sealed_count",
})
SAFE_HEADERS = frozenset({"event_type", "schema_version", "classification", "mode"})
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SAFE_TEXT = re.compile(r"^[A-Za-z0-9._:+-]{1,64}$")  # ids, enum values, timestamps; no spaces
# pydantic's "input_value=..." (up to its ", input_type=..."), and any quoted text in a message.
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$|$)", re.S)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
SCALARS = (int, float, bool, type(None))


def scrub_value(value: bytes | None) -> tuple[bytes | None, list[str]]:
    """(the value to keep, the paths removed). Not a JSON object: nothing kept, path "$"."""
    if value is None:
        return None, []
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, ["$"]
    if not isinstance(doc, dict):
        return None, ["$"]
    removed: list[str] = []
    kept = _scrub_object(doc, "", removed)
    return orjson.dumps(kept), removed


def _scrub_object(doc: dict, path: str, removed: list[str]) -> dict:
    out: dict[str, Any] = {}
    for key, item in doc.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in SAFE_FIELDS:
            out[key] = REMOVED
            removed.append(where)
        else:
            out[key] = _scrub_item(item, where, removed)
    return out


def _scrub_item(item: Any, where: str, removed: list[str]) -> Any:
    if isinstance(item, dict):
        return _scrub_object(item, where, removed)
    if isinstance(item, list):
        return [_scrub_item(x, f"{where}[{i}]", removed) for i, x in enumerate(item)]
    if isinstance(item, SCALARS):
        return item
    if isinstance(item, str) and _SAFE_TEXT.match(item):
        return item  # an id, an enum value, a timestamp: no free text
    removed.append(where)
    return REMOVED


def scrub_key(key: bytes | None) -> bytes | None:
    """A record key is an incident id or a ward code; anything else is not kept."""
    if key is None:
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return None
    return key if _SAFE_KEY.match(text) else None


def scrub_headers(headers: Any) -> dict[str, str]:
    kept = {}
    for name, raw in headers or ():
        if name in SAFE_HEADERS:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if _SAFE_KEY.match(text):
                kept[name] = text
    return kept


def scrub_error(error: BaseException | str) -> str:
    """The reason, without the input values it may quote (a pydantic error names the field and the
    problem; the field's value is what may be a person's name)."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors()]
            return f"{len(parts)} validation error(s): " + "; ".join(parts)
        except Exception:  # noqa: BLE001 - not pydantic's errors(); fall back to the text
            pass
    text = str(error)
    text = _INPUT_VALUE.sub("input_value=" + REMOVED, text)
    return _QUOTED.sub(REMOVED, text)
