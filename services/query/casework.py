"""Casework on the read side: ASB cases and premises, under the same who-sees-what rules.

Every case is OFFICIAL-SENSITIVE: it is read only with a stated reason (X-Access-Reason),
every case handed out is audited, and a case the caller may not see answers 404, exactly as
one that does not exist. Who may see a case (the rule here and, as the second lock, in
PostgreSQL: migration 0007_casework.sql):

- the cleared roles (safeguarding, admin);
- the council's and the police's control room, enforcement officers and analysts;
- a housing provider's staff in those roles, only for cases about their own tenants (the
  token's `org` claim names the provider; the case lists the providers its reports named).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from services.query import access, queries
from services.query.access import Reader
from services.query.routes import ERRORS, NOT_FOUND, REASON_NEEDED, reader, service
from services.query.service import NotFound, QueryService
from services.shared.auth import Role
from services.shared.events import Mode

router = APIRouter(tags=["casework"])
CASE_ROLES = frozenset({Role.CONTROL_ROOM, Role.ENFORCEMENT_OFFICER, Role.ANALYST})
CASE_COLUMNS = (
    "case_id, kind, mode, classification, complainant_key, uprn, route, status, counted, threshold, entries, clocks, "
    "agencies, housing_providers, next_due_at, as_of"
)


def may_see_case(reader: Reader, housing_providers) -> bool:
    """The Python half of the rule (the database's policy is the other)."""
    if reader.reason is None:
        return False
    p = reader.principal
    if reader.cleared:
        return True
    if p.role not in CASE_ROLES:
        return False
    if p.agency.value in ("council", "police"):
        return True
    return p.agency.value == "housing" and p.org is not None and p.org in set(housing_providers or ())


def _require_reason(reader: Reader) -> None:
    if reader.reason is None:
        raise access.ReasonRequired(f"{access.REASON_HEADER}: state why you are reading casework (OFFICIAL-SENSITIVE)")


def _present(row) -> dict:
    return {
        "case_id": str(row["case_id"]), "kind": row["kind"], "mode": row["mode"], "classification": row["classification"],
        "complainant_key": row["complainant_key"], "uprn": row["uprn"], "route": row["route"], "status": row["status"],
        "counted": row["counted"], "threshold": row["threshold"], "entries": row["entries"], "clocks": row["clocks"],
        "agencies": list(row["agencies"] or ()), "housing_providers": list(row["housing_providers"] or ()),
        "next_due_at": row["next_due_at"].isoformat() if row["next_due_at"] else None, "as_of": row["as_of"].isoformat(),
    }


async def _audit(svc: QueryService, conn, reader: Reader, rows, endpoint: str) -> None:
    if rows:
        p = reader.principal
        await queries.audit(
            conn, subject=p.subject, role=p.role.value, agency=p.agency.value, endpoint=endpoint,
            reason=reader.reason or "", records=[(str(r["case_id"]), r["classification"]) for r in rows], kind="case",
        )
        svc.audited(len(rows))


async def list_cases(svc: QueryService, reader: Reader, *, kind: str | None, status: str | None, mode: str,
                     near: bool, limit: int) -> dict:
    _require_reason(reader)
    where, args = ["mode = $1"], [mode]
    if kind:
        args.append(kind)
        where.append(f"kind = ${len(args)}")
    if status:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if near:  # one short of its threshold, met, or a clock to watch
        where.append("(next_due_at is not null or (threshold is not null and counted >= threshold - 1))")
    args.append(limit)
    sql = (f"select {CASE_COLUMNS} from casework_cases where {' and '.join(where)} "
           f"order by next_due_at nulls last, counted desc, case_id limit ${len(args)}")
    async with access.scoped(svc.pool, reader) as conn:
        rows = [r for r in await conn.fetch(sql, *args) if may_see_case(reader, r["housing_providers"])]
        await _audit(svc, conn, reader, rows, "/v1/casework/cases")
    return {"items": [_present(r) for r in rows]}


async def one_case(svc: QueryService, reader: Reader, *, case_id: uuid.UUID | None = None, uprn: str | None = None,
                   mode: str = "live") -> dict:
    _require_reason(reader)
    async with access.scoped(svc.pool, reader) as conn:
        if case_id is not None:
            row = await conn.fetchrow(f"select {CASE_COLUMNS} from casework_cases where case_id = $1", case_id)
        else:
            row = await conn.fetchrow(
                f"select {CASE_COLUMNS} from casework_cases where kind = 'premises' and uprn = $1 and mode = $2",
                uprn, mode,
            )
        if row is None or not may_see_case(reader, row["housing_providers"]):
            raise NotFound(case_id or uprn)
        alerts = await conn.fetch(
            "select payload from casework_alerts where case_id = $1 order by occurred_at, event_id", row["case_id"]
        )
        await _audit(svc, conn, reader, [row], "/v1/casework/cases/{case_id}")
    return {"case": _present(row), "alerts": [a["payload"] for a in alerts]}


@router.get("/v1/casework/cases", responses={**ERRORS, **REASON_NEEDED})
async def cases_route(
    kind: Annotated[Literal["asb", "premises"] | None, Query()] = None,
    status: Annotated[Literal["watching", "threshold_met", "closure_in_force", "with_safeguarding"] | None, Query()] = None,
    mode: Annotated[Mode, Query(description="Live unless exercise or test is asked for.")] = Mode.LIVE,
    near: Annotated[bool, Query(description="Only cases near or past a threshold, or with a clock running.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
) -> dict:
    """ASB cases and premises this caller may see (a stated reason is required; audited)."""
    return await list_cases(svc, who, kind=kind, status=status, mode=mode.value, near=near, limit=limit)


@router.get("/v1/casework/cases/{case_id}", responses={**ERRORS, **NOT_FOUND, **REASON_NEEDED})
async def case_route(case_id: uuid.UUID, who: Reader = Depends(reader), svc: QueryService = Depends(service)) -> dict:
    """One case with every alert it raised."""
    return await one_case(svc, who, case_id=case_id)


@router.get("/v1/casework/premises/{uprn}", responses={**ERRORS, **NOT_FOUND, **REASON_NEEDED})
async def premises_route(
    uprn: Annotated[str, Path(pattern=r"^[0-9]{1,12}$")],
    mode: Annotated[Mode, Query()] = Mode.LIVE,
    who: Reader = Depends(reader),
    svc: QueryService = Depends(service),
) -> dict:
    """A property's ledger: its reports, the rules it reached, its closure clocks."""
    return await one_case(svc, who, uprn=uprn, mode=mode.value)
