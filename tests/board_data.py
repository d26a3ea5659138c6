"""A busy night in the status store, written straight into its tables with COPY (as the
projector would leave them): open incidents across the borough, some linked to a lead,
some escalated with their M/ETHANE and CAP messages in the timeline, every ward's tension
now and its last four weeks. For the board's benchmark, browser tests and screenshots."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from services.projector.handlers import TIMELINE_COLUMNS
from services.shared.events import SENSITIVE_CATEGORIES, Category, TensionLevel
from services.shared.wards import load_wards

SOURCE_ID = "board-seed"
INCIDENT_COLUMNS = (
    "incident_id", "reported", "category", "severity", "status", "status_rank", "status_at", "ward_code", "address",
    "description", "agencies_required", "agencies_dispatched", "classification", "mode", "reported_at", "occurred_at",
    "acknowledged_at", "last_event_at", "updated_at", "version", "source_kind", "source_id", "source_agency",
    "lead_incident_id", "escalation_level", "hazards", "casualties",
)
ESCALATION_COLUMNS = (
    "incident_id", "level", "level_name", "agencies", "rule_id", "rule_set_version", "reason", "category", "severity",
    "ward_code", "methane", "cap_xml", "classification", "mode", "raised_event_id", "raised_at",
)
TENSION_COLUMNS = ('ward_code', 'mode', 'ward_name', 'level', 'previous_level', 'score', 'observed', 'expected',
                   '"window"', 'window_start', 'window_end', 'changed_at', 'event_id')
HISTORY_COLUMNS = ('event_id', 'ward_code', 'ward_name', 'mode', 'classification', 'old_level', 'new_level', 'score',
                   'observed', 'expected', '"window"', 'window_start', 'window_end', 'occurred_at', 'recorded_at')
OPEN = [("open", 0)] * 5 + [("acknowledged", 1)] * 3 + [("dispatched", 2), ("on_scene", 3)]
LEVEL_NAMES = {1: "duty officer", 2: "partnership tactical", 3: "major incident"}
NOISY = ["noise", "antisocial_behaviour", "criminal_damage", "street_welfare", "drugs", "violence", "other"]
SERIOUS = ["fire", "road_traffic_collision", "knife_crime", "violence", "flood", "explosion_or_collapse"]
CAP = """<?xml version='1.0' encoding='UTF-8'?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>urn:uuid:{event_id}</identifier>
<sender>muster@borough.example</sender><sent>{sent}</sent><status>Actual</status><msgType>Alert</msgType>
<source>Muster escalation</source><scope>Restricted</scope><restriction>Partnership responders only; OFFICIAL</restriction>
<incidents>{incident_id}</incidents><info><language>en-GB</language><category>{cap_category}</category>
<event>{event}</event><responseType>Execute</responseType><urgency>Immediate</urgency><severity>Severe</severity>
<certainty>Observed</certainty><senderName>Muster community-safety partnership</senderName>
<headline>Level {level} {level_name}: {event} in {ward}</headline>
<parameter><valueName>level</valueName><value>{level}</value></parameter>
<parameter><valueName>rule</valueName><value>{rule}</value></parameter>
<area><areaDesc>{ward} ward</areaDesc><geocode><valueName>ONS ward code</valueName><value>{ward_code}</value></geocode></area>
</info></alert>"""


def _methane(category: str, ward: str, level: int, casualties: dict, agencies: list[str]) -> dict:
    return {
        "major_incident": False, "exact_location": f"{ward} ward", "type": category.replace("_", " "),
        "hazards": [], "access": "not yet known", "number_of_casualties": casualties,
        "emergency_services_present": [], "emergency_services_required": agencies,
    }


async def load(conn: asyncpg.Connection, *, incidents: int, now: datetime | None = None, seed: int = 21,
               escalated: int = 30, linked_share: float = 0.15) -> dict:
    """Fill an empty, migrated status store. Returns a few ids worth looking at."""
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    wards = load_wards()
    codes = sorted(wards)
    rows, events, escalations = [], [], []
    leads: dict[str, list[uuid.UUID]] = {}  # ward -> incidents that lead a chain (duplicates are reported nearby)
    for n in range(incidents):
        iid = uuid.UUID(int=rng.getrandbits(128))
        serious = n < escalated
        category = rng.choice(SERIOUS if serious else NOISY + SERIOUS[:2])
        cls = "OFFICIAL-SENSITIVE" if Category(category) in SENSITIVE_CATEGORIES else "OFFICIAL"
        at = now - timedelta(seconds=rng.randrange(12 * 3600))
        status, rank = rng.choice(OPEN)
        ward = rng.choice(codes)
        agency = rng.choice(("council", "police", "fire", "ambulance", "housing"))
        severity = rng.randint(4, 5) if serious else rng.randint(1, 4)
        nearby = leads.get(ward, [])[-3:]
        lead = rng.choice(nearby) if nearby and not serious and rng.random() < linked_share else None
        level = (3 if n < 3 else 2 if n < 10 else 1) if serious else 0
        casualties = {"fatalities": 0, "serious": rng.randint(0, 3) if serious else 0, "minor": rng.randint(0, 4),
                      "uninjured_involved": 0}
        required = sorted({agency, *(["fire", "police", "ambulance"] if level == 3 else [])})
        rows.append((
            iid, True, category, severity, status, rank, at, ward, f"{rng.randint(1, 200)} High Street",
            f"Report {n}: {category.replace('_', ' ')} near the {rng.choice(['market', 'station', 'park', 'estate'])}",
            required, [agency] if rank >= 2 else [], cls, "live", at + timedelta(seconds=2), at,
            at + timedelta(minutes=2) if rank else None, at, at, 1, "control_room", SOURCE_ID, agency, lead, level,
            [], json.dumps(casualties),
        ))
        report = {"event_type": "IncidentReported", "incident_id": str(iid), "category": category,
                  "severity": severity, "description": rows[-1][9], "location": {"ward_code": ward}}
        events.append((uuid.UUID(int=rng.getrandbits(128)), iid, "IncidentReported", at, at, cls, "live",
                       "control_room", SOURCE_ID, agency, json.dumps(report), "seed", 0, 2 * n))
        if lead is None and (serious or rng.random() < 0.1):
            leads.setdefault(ward, []).append(iid)
        for lv in range(1, level + 1):
            event_id = uuid.UUID(int=rng.getrandbits(128))
            raised = at + timedelta(minutes=lv)
            methane = _methane(category, wards[ward].name, lv, casualties, required)
            cap = CAP.format(event_id=event_id, sent=raised.replace(microsecond=0).isoformat(), incident_id=iid,
                             cap_category="Fire" if category == "fire" else "Security", event=category.replace("_", " "),
                             level=lv, level_name=LEVEL_NAMES[lv], ward=wards[ward].name, ward_code=ward,
                             rule=f"seed-{category}-l{lv}")
            escalations.append((iid, lv, LEVEL_NAMES[lv], required, f"seed-{category}-l{lv}", "seed", "seeded",
                                category, severity, ward, json.dumps(methane), cap, cls, "live", event_id, raised))
            payload = {"event_type": "EscalationRaised", "incident_id": str(iid), "level": lv,
                       "level_name": LEVEL_NAMES[lv], "agencies": required, "rule_id": f"seed-{category}-l{lv}",
                       "reason": "seeded", "methane": methane, "cap_xml": cap}
            events.append((event_id, iid, "EscalationRaised", raised, raised, cls, "live", "system", "escalation",
                           None, json.dumps(payload), "seed", 1, 2 * n + lv))
    await conn.execute("set session_replication_role = replica")  # no change notifications while loading
    await conn.copy_records_to_table("incidents", records=rows, columns=INCIDENT_COLUMNS)
    await conn.copy_records_to_table("incident_events", records=events, columns=TIMELINE_COLUMNS)
    await conn.copy_records_to_table("escalations", records=escalations, columns=ESCALATION_COLUMNS)
    await _tension(conn, rng, now, wards)
    await conn.execute("set session_replication_role = origin")
    await conn.execute("analyze")
    return {"level3": [r[0] for r in rows if r[24] == 3], "leads": [i for ids in leads.values() for i in ids],
            "linked": [r[0] for r in rows if r[23] is not None]}


async def _tension(conn: asyncpg.Connection, rng: random.Random, now: datetime, wards) -> None:
    levels = [t.value for t in TensionLevel]
    history, current = [], []
    for code, ward in sorted(wards.items()):
        level, at = "normal", now - timedelta(weeks=4)
        for _ in range(rng.randint(0, 6)):
            at += timedelta(hours=rng.randint(6, 100))
            if at >= now:
                break
            new = rng.choice([x for x in levels if x != level][: 2 if level == "normal" else 3])
            history.append((uuid.UUID(int=rng.getrandbits(128)), code, ward.name, "live", "OFFICIAL", level, new,
                            1.5, 6.0, 4.0, "24h/1h", at - timedelta(hours=24), at, at, at))
            level = new
        current.append((code, "live", ward.name, level, "normal", 1.5, 6.0, 4.0, "24h/1h", now - timedelta(hours=24),
                        now, min(at, now), uuid.UUID(int=rng.getrandbits(128))))
    await conn.copy_records_to_table("ward_tension_history", records=history, columns=[c.strip('"') for c in HISTORY_COLUMNS])
    await conn.copy_records_to_table("ward_tension", records=current, columns=[c.strip('"') for c in TENSION_COLUMNS])
