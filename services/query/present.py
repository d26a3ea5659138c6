"""Rows to response shapes (plain dicts matching schemas.py). Pure."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from services.shared.wards import Ward


def source(row: Mapping) -> dict:
    return {"kind": row["source_kind"], "id": row["source_id"], "agency": row["source_agency"]}


def incident(row: Mapping, wards: Mapping[str, Ward]) -> dict:
    ward = wards.get(row["ward_code"]) if row["ward_code"] else None
    return {
        "incident_id": row["incident_id"],
        "classification": row["classification"],
        "mode": row["mode"],
        "reported": row["reported"],
        "category": row["category"],
        "severity": row["severity"],
        "status": row["status"],
        "ward_code": row["ward_code"],
        "ward_name": ward.name if ward else None,
        "lat": row["lat"],
        "lon": row["lon"],
        "address": row["address"],
        "what3words": row["what3words"],
        "description": row["description"],
        "casualties": row["casualties"],
        "hazards": list(row["hazards"] or ()),
        "agencies_required": list(row["agencies_required"] or ()),
        "agencies_dispatched": list(row["agencies_dispatched"] or ()),
        "agencies_on_scene": list(row["agencies_on_scene"] or ()),
        "police_grading": row["police_grading"],
        "lead_incident_id": row["lead_incident_id"],
        "occurred_at": row["occurred_at"],
        "reported_at": row["reported_at"],
        "acknowledged_at": row["acknowledged_at"],
        "last_event_at": row["last_event_at"],
        "updated_at": row["updated_at"],
        "escalation_level": row["escalation_level"],
        "major_incident_declared": row["major_incident_declared"],
        "version": row["version"],
        "source": source(row),
    }


# Where a timeline payload names other incidents: an escalation's correlated reports and its
# duplicate's lead, a link's lead.
_REFERENCE_LISTS = ("related", "related_incident_ids")
_REFERENCES = ("duplicate", "lead_incident_id")


def _ref_id(value) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("incident_id")
    return str(value) if value is not None else None


def references(payload: Mapping) -> set[str]:
    """The other incidents a timeline payload names (their ids as text)."""
    found = {_ref_id(payload.get(k)) for k in _REFERENCES} - {None}
    for key in _REFERENCE_LISTS:
        found.update(r for r in map(_ref_id, payload.get(key) or ()) if r is not None)
    return found


def without_references(entry: dict, hidden: set[str]) -> dict:
    """A timeline entry naming none of the `hidden` incidents (ones its reader may not see: their ids,
    places and times are theirs; red-team probe, 2026-12-04): dropped from a list, null for one."""
    payload = entry["payload"]
    if not references(payload) & hidden:
        return entry
    payload = dict(payload)
    for key in _REFERENCE_LISTS:
        if payload.get(key):
            payload[key] = [r for r in payload[key] if _ref_id(r) not in hidden]
    for key in _REFERENCES:
        if _ref_id(payload.get(key)) in hidden:
            payload[key] = None
    return {**entry, "payload": payload}


def timeline_entry(row: Mapping, full_payload: Mapping | None) -> dict:
    return {
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "occurred_at": row["occurred_at"],
        "recorded_at": row["recorded_at"],
        "classification": row["classification"],
        "mode": row["mode"],
        "source": source(row),
        "payload": dict(full_payload if full_payload is not None else row["payload"]),
    }


def escalation(row: Mapping) -> dict:
    return {
        "incident_id": row["incident_id"],
        "level": row["level"],
        "level_name": row["level_name"],
        "agencies": list(row["agencies"] or ()),
        "rule_id": row["rule_id"],
        "reason": row["reason"],
        "category": row["category"],
        "severity": row["severity"],
        "ward_code": row["ward_code"],
        "classification": row["classification"],
        "mode": row["mode"],
        "raised_at": row["raised_at"],
        "stood_down_at": row["stood_down_at"],
        "stood_down_reason": row["stood_down_reason"],
        "final_status": row["final_status"],
        "methane": row["methane"],
    }


def tension_now(row: Mapping | None) -> dict | None:
    if row is None:
        return None
    return {
        "level": row["level"],
        "previous_level": row["previous_level"],
        "score": row["score"],
        "observed": row["observed"],
        "expected": row["expected"],
        "window": row["window"],
        "window_start": row["window_start"],
        "window_end": row["window_end"],
        "changed_at": row["changed_at"],
    }


def tension_change(row: Mapping) -> dict:
    return {
        "event_id": row["event_id"],
        "classification": row["classification"],
        "old_level": row["old_level"],
        "new_level": row["new_level"],
        "score": row["score"],
        "observed": row["observed"],
        "expected": row["expected"],
        "window": row["window"],
        "window_start": row["window_start"],
        "window_end": row["window_end"],
        "occurred_at": row["occurred_at"],
        "top_contributors": list(row["top_contributors"] or ()),
    }


def ward(w: Ward, tension_row: Mapping | None) -> dict:
    return {"code": w.code, "name": w.name, "lat": w.lat, "lon": w.lon, "tension": tension_now(tension_row)}


def stats(rows: list[Mapping]) -> dict:
    out = {"total": 0, "by_ward": [], "by_category": [], "by_hour_of_week": []}
    for r in rows:
        if r["g_ward"] and r["g_category"] and r["g_hour"]:
            out["total"] = r["n"]
        elif not r["g_ward"]:
            out["by_ward"].append({"key": r["ward_code"] or "unknown", "count": r["n"]})
        elif not r["g_category"]:
            out["by_category"].append({"key": r["category"] or "unknown", "count": r["n"]})
        else:
            out["by_hour_of_week"].append({"day_of_week": r["dow"], "hour": r["hour"], "count": r["n"]})
    out["by_ward"].sort(key=lambda c: (-c["count"], c["key"]))
    out["by_category"].sort(key=lambda c: (-c["count"], c["key"]))
    out["by_hour_of_week"].sort(key=lambda c: (c["day_of_week"], c["hour"]))
    return out


def silence(row, wards: dict) -> dict:
    """An operator's silence in force: which ward and category, from and until when, why, by whom."""
    code = row["ward_codes"][0]
    return {"silence_id": row["subject_id"], "ward_code": code,
            "ward_name": wards[code].name if code in wards else code, "category": row["category"],
            "silenced_at": row["occurred_at"], "until": row["until"], "reason": row["reason"],
            "silenced_by": {"kind": row["source_kind"], "id": row["source_id"]},
            "classification": row["classification"], "mode": row["mode"]}


def planned_event(row) -> dict:
    payload = row["payload"] if isinstance(row["payload"], dict) else orjson.loads(row["payload"])
    return {"planned_event_id": row["subject_id"], "name": payload["name"], "kind": payload["kind"],
            "wards": list(row["ward_codes"]), "route": payload.get("route", False), "starts_at": row["starts_at"],
            "ends_at": row["until"], "contentious": payload.get("contentious", False),
            "expected_uplift": payload.get("expected_uplift", {}), "registered_at": row["occurred_at"],
            "registered_by": {"kind": row["source_kind"], "id": row["source_id"]},
            "classification": row["classification"], "mode": row["mode"]}
