"""What the query API does for one reader: read in the reader's scope, apply the Python
rules as a second lock, redact, and audit every sensitive record it hands out."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timezone

import asyncpg

from services.query import access, present, queries
from services.query.access import SENSITIVE, Reader
from services.query.pagination import Cursor, page
from services.shared import keys, sealing
from services.shared.weekly import week_bounds, week_instants, weekly_return
from services.shared.wards import Ward


# What a timeline payload's `people` says once the incident's key is erased.
ERASED = "[erased]"


class NotFound(Exception):
    """Absent, or not visible to this reader: the two are never told apart."""


def _narrowed(reader: Reader, filters: queries.IncidentFilters) -> queries.IncidentFilters | None:
    """The filters without categories this reader cannot find anything in; None: nothing can match."""
    if not filters.categories:
        return filters
    reachable = access.reachable_categories(reader, filters.categories)
    return dataclasses.replace(filters, categories=reachable) if reachable else None


async def opened(conn, incident_id: uuid.UUID, people, payloads: dict) -> tuple:
    """The people (and each timeline payload's people) opened with the incident's data key, which the
    key service releases only to a reader the database agrees is cleared (muster_keys.key_for_reading).
    Erased (no key): people None, each sealed payload's people ERASED, and when it was erased (or True
    when the erasure's record is not there); False when not erased."""
    sealed_payloads = [e for e, p in payloads.items() if p.get(sealing.SEALED_FIELD) is not None]
    if not sealing.is_sealed(people) and not sealed_payloads:
        return people, payloads, False
    key = await keys.key_for_reading(conn, incident_id)

    def payload(event_id):
        body = {k: v for k, v in payloads[event_id].items() if k != sealing.SEALED_FIELD}
        sealed_people = payloads[event_id][sealing.SEALED_FIELD]
        return body | {sealing.FIELD: ERASED if key is None else sealing.open_people(key, incident_id, sealed_people)}

    payloads = {**payloads, **{e: payload(e) for e in sealed_payloads}}
    if key is None:
        return (None if sealing.is_sealed(people) else people), payloads, await keys.erasure_of(conn, incident_id)
    return (sealing.open_people(key, incident_id, people) if sealing.is_sealed(people) else people), payloads, False


class QueryService:
    def __init__(self, pool: asyncpg.Pool, wards: Mapping[str, Ward], on_audit=None) -> None:
        self.pool = pool
        self.wards = wards
        self._on_audit = on_audit or (lambda n: None)

    def audited(self, records: int) -> None:
        """Count sensitive records handed out and audited (the metrics hook)."""
        self._on_audit(records)

    async def audit(self, conn, reader: Reader, rows, endpoint: str, people=None) -> None:
        """An audit row per sensitive record handed out, and for `people`: the record whose people
        the response carries, whatever its classification."""
        records = sorted({(str(r["incident_id"]), r["classification"]) for r in rows
                          if r["classification"] == SENSITIVE or r is people})
        if records:
            p = reader.principal
            await queries.audit(
                conn, subject=p.subject, role=p.role.value, agency=p.agency.value, records=records,
                endpoint=endpoint, reason=reader.reason or "",
            )
            self._on_audit(len(records))

    async def _visible_escalations(self, conn, reader: Reader, rows, endpoint: str) -> list:
        """Escalations whose incident this reader may see (second lock), each sensitive one audited."""
        if not rows:
            return []
        owners = {r["incident_id"]: r for r in await queries.incidents_by_id(conn, list({r["incident_id"] for r in rows}))}
        rows = [r for r in rows if r["incident_id"] in owners and access.may_see_row(reader, owners[r["incident_id"]])]
        await self.audit(conn, reader, [owners[r["incident_id"]] for r in rows], endpoint)
        return rows

    async def incidents(self, reader: Reader, filters: queries.IncidentFilters, cursor: Cursor | None, limit: int):
        filters = _narrowed(reader, filters)
        if filters is None:
            return {"items": [], "next_cursor": None}
        async with access.scoped(self.pool, reader) as conn:
            rows, next_cursor = page(await queries.list_incidents(conn, filters, cursor, limit), limit)
            rows = access.visible(reader, rows)
            hidden = await self._hidden(conn, reader, {str(r["lead_incident_id"]) for r in rows if r["lead_incident_id"]})
            await self.audit(conn, reader, rows, "/v1/incidents")
        items = [present.incident(r, self.wards) for r in rows]
        for item in items if hidden else ():
            if str(item["lead_incident_id"]) in hidden:
                item["lead_incident_id"] = None  # a lead this reader may not see: not even its id
        return {"items": items, "next_cursor": next_cursor}

    async def incident(self, reader: Reader, incident_id: uuid.UUID) -> dict:
        async with access.scoped(self.pool, reader) as conn:
            row = await queries.incident(conn, incident_id)
            if row is None or not access.may_see_row(reader, row):
                if reader.reason is None and await queries.needs_reason(conn, incident_id):
                    raise access.ReasonRequired(
                        f"{access.REASON_HEADER}: state why you are reading this OFFICIAL-SENSITIVE record"
                    )
                raise NotFound(incident_id)
            cleared = access.may_see_people(reader, row["source_agency"], row["agencies_required"])
            events = await queries.timeline(conn, incident_id)
            payloads = await queries.full_payloads(conn, incident_id) if cleared else {}
            people = await queries.people(conn, incident_id) if cleared else None
            erased = False
            if cleared:
                people, payloads, erased = await opened(conn, incident_id, people, payloads)
            escalations = await queries.escalations_of(conn, incident_id)  # this incident's: visible with it
            linked = access.visible(reader, await queries.linked(conn, incident_id, row["lead_incident_id"]))
            timeline = [present.timeline_entry(e, payloads.get(e["event_id"])) for e in events]
            hidden = await self._hidden(conn, reader, {r for t in timeline for r in present.references(t["payload"])}
                                        | ({str(row["lead_incident_id"])} if row["lead_incident_id"] else set()))
            await self.audit(conn, reader, [row, *linked], "/v1/incidents/{incident_id}",
                             people=row if people is not None or payloads else None)
        shown = present.incident(row, self.wards)
        if hidden:
            timeline = [present.without_references(t, hidden) for t in timeline]
            if str(row["lead_incident_id"]) in hidden:
                shown["lead_incident_id"] = None
        return {
            "incident": shown,
            "people": list(people) if people is not None else None,
            "restricted_redacted": not cleared,
            "people_erased": erased is not False,
            "people_erased_at": erased if isinstance(erased, datetime) else None,
            "timeline": timeline,
            "escalations": [present.escalation(e) for e in escalations],
            "linked": [present.incident(r, self.wards) for r in linked],
        }

    async def _hidden(self, conn, reader: Reader, ids: set[str]) -> set[str]:
        """Of these incident ids (text), those this reader may not see: an incident another names (a
        correlated report, a lead) is shown, or its id, only to who may see it. One not in the status
        store yet counts as hidden until it is."""
        if not ids:
            return set()
        wanted = []
        for i in ids:
            try:
                wanted.append(uuid.UUID(i))
            except ValueError:
                continue  # no incident's id: nobody's to see
        seen = {str(r["incident_id"]) for r in access.visible(reader, await queries.incidents_by_id(conn, wanted))}
        return ids - seen

    async def escalations(self, reader: Reader, *, open_only: bool, ward: str | None, mode: str | None, limit: int):
        async with access.scoped(self.pool, reader) as conn:
            rows = await queries.list_escalations(conn, open_only=open_only, ward=ward, mode=mode, limit=limit)
            rows = await self._visible_escalations(conn, reader, rows, "/v1/escalations")
        return {"items": [present.escalation(r) for r in rows]}

    async def wards_now(self, reader: Reader, mode: str) -> list[dict]:
        async with access.scoped(self.pool, reader) as conn:
            now = await queries.tension_now(conn, mode)
        return [present.ward(w, now.get(code)) for code, w in sorted(self.wards.items())]

    async def ward_tension(self, reader: Reader, code: str, mode: str, limit: int) -> dict:
        ward = self.wards.get(code)
        if ward is None:
            raise NotFound(code)
        async with access.scoped(self.pool, reader) as conn:
            now = (await queries.tension_now(conn, mode)).get(code)
            history = await queries.tension_history(conn, code, mode, limit)
        history = [h for h in history if access.may_see(reader, h["classification"], None, None)]
        return {
            "ward_code": code, "ward_name": ward.name, "mode": mode,
            "now": present.tension_now(now), "history": [present.tension_change(h) for h in history],
        }

    async def tension_return(self, reader: Reader, week: date, mode: str) -> dict:
        start, end = week_bounds(week)
        start_at, end_at = week_instants(week)  # ISO week in Europe/London (services/shared/weekly.py)
        async with access.scoped(self.pool, reader) as conn:
            at_start = await queries.levels_before(conn, mode, start_at)
            changes = await queries.changes_between(conn, mode, start_at, end_at)
        changes = [c for c in changes if access.may_see(reader, c["classification"], None, None)]
        names = {code: w.name for code, w in self.wards.items()}
        return {"week_start": start, "week_end": end, "mode": mode, "wards": weekly_return(names, at_start, changes)}

    async def stats(self, reader: Reader, filters: queries.IncidentFilters) -> dict:
        filters = _narrowed(reader, filters)
        if filters is None:
            return present.stats([])
        async with access.scoped(self.pool, reader) as conn:
            rows = await queries.stats(conn, filters)
        return present.stats(rows)

    async def board(self, reader: Reader, mode: str, limit: int = 200) -> dict:
        """Everything the board shows, in one transaction."""
        async with access.scoped(self.pool, reader) as conn:
            incidents = access.visible(reader, await queries.open_incidents(conn, mode, limit))
            escalations = await queries.list_escalations(conn, open_only=True, ward=None, mode=mode, limit=limit)
            escalations = await self._visible_escalations(conn, reader, escalations, "/board")
            tension = await queries.tension_now(conn, mode)
            silences = await queries.silences_in_force(conn, mode, datetime.now(timezone.utc))
            await self.audit(conn, reader, incidents, "/board")
        return {
            "incidents": [present.incident(r, self.wards) for r in incidents],
            "escalations": [present.escalation(r) for r in escalations],
            "wards": [present.ward(w, tension.get(code)) for code, w in sorted(self.wards.items())],
            "silences": [present.silence(r, self.wards) for r in silences],
        }

    async def silences(self, reader: Reader, mode: str) -> list[dict]:
        """The operators' silences in force now (the read side's rules apply: a sensitive category's
        silence only to those cleared for it)."""
        async with access.scoped(self.pool, reader) as conn:
            rows = await queries.silences_in_force(conn, mode, datetime.now(timezone.utc))
        return [present.silence(r, self.wards) for r in rows]

    async def planned_events(self, reader: Reader, mode: str) -> list[dict]:
        """Planned events registered and not cancelled, not over yet, soonest first."""
        async with access.scoped(self.pool, reader) as conn:
            rows = await queries.planned_events(conn, mode, datetime.now(timezone.utc))
        return [present.planned_event(r) for r in rows]

    async def changes(self, reader: Reader, incident_ids: list[uuid.UUID], escalation_ids: list[uuid.UUID],
                      tension_keys: list[tuple[str, str]], mode: str = "live") -> list[tuple[str, dict]]:
        """The stream's view of changed rows of one mode (live unless asked): only what this
        reader may see, audited."""
        out: list[tuple[str, dict]] = []
        tension_keys = [k for k in tension_keys if k[1] == mode] if tension_keys else tension_keys
        async with access.scoped(self.pool, reader) as conn:
            incidents = access.visible(reader, await queries.incidents_by_id(conn, incident_ids)) if incident_ids else []
            incidents = [r for r in incidents if r["mode"] == mode]
            escalations = await queries.escalations_by_incident(conn, escalation_ids) if escalation_ids else []
            escalations = [e for e in escalations if e["mode"] == mode]
            escalations = await self._visible_escalations(conn, reader, escalations, "/v1/stream")
            tension = await queries.tension_by_key(conn, tension_keys) if tension_keys else []
            await self.audit(conn, reader, incidents, "/v1/stream")
        out += [("incident", present.incident(r, self.wards)) for r in incidents]
        out += [("escalation", present.escalation(e)) for e in escalations]
        for t in tension:
            ward = self.wards.get(t["ward_code"])
            body = {"ward_code": t["ward_code"], "ward_name": ward.name if ward else t["ward_code"], "mode": t["mode"]}
            out.append(("tension", {**body, "tension": present.tension_now(t)}))
        return out

    async def ready(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("select 1")
