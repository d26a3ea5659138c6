"""What the board reads for one reader, in the reader's scope, with the Python rules as the
second lock and every sensitive record it shows audited (as the rest of the query service)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.query import access, present, queries
from services.query.access import Reader
from services.query.board import model
from services.query.board import queries as board_queries
from services.query.queries import IncidentFilters
from services.query.service import QueryService


UNACK_SHOWN = 6  # the longest-waiting unacknowledged incidents named in the strip


@dataclass
class Screen:
    """Everything the board's one screen shows."""

    page: model.Page
    escalations: dict[int, list]  # level -> open escalation rows, each incident at its highest level
    owners: dict  # incident_id -> the incident row of each escalation shown
    unacknowledged: int  # how many open incidents nobody has acknowledged
    oldest: list  # the longest-waiting of them, most severe first
    grid: dict[int, list[int]]
    open_by_ward: dict[str, int]
    tension: dict  # ward_code -> ward_tension row
    sensitive_shown: bool
    silences: dict = field(default_factory=dict)  # ward_code -> the operators' silences in force (tension)


async def screen(svc: QueryService, who: Reader, filters: IncidentFilters, page: int, mode: str, now: datetime) -> Screen:
    async with access.scoped(svc.pool, who) as conn:
        summaries = await board_queries.chain_page(conn, filters, mode, model.offset_of(page), model.PAGE_SIZE)
        members = await board_queries.chain_members(conn, [s["chain"] for s in summaries], filters, mode) if summaries else []
        shown = model.page_of(summaries, access.visible(who, members), page)
        counts = await board_queries.unacknowledged_counts(conn, mode, now, model.AGE_EDGES)
        oldest = access.visible(who, await board_queries.oldest_unacknowledged(conn, mode, UNACK_SHOWN))
        escalation_rows = await queries.list_escalations(conn, open_only=True, ward=None, mode=mode, limit=500)
        live = model.live_escalations(escalation_rows)
        ids = list({e["incident_id"] for level in live.values() for e in level})
        owners = {r["incident_id"]: r for r in await queries.incidents_by_id(conn, ids)} if ids else {}
        owners = {k: r for k, r in owners.items() if access.may_see_row(who, r)}
        live = {level: [e for e in items if e["incident_id"] in owners] for level, items in live.items()}
        by_ward = await board_queries.open_by_ward(conn, mode)
        tension = await queries.tension_now(conn, mode)
        silences = await queries.silences_in_force(conn, mode, now)
        shown_rows = [*(m for c in shown.items for m in c.members), *owners.values(), *oldest]
        await svc.audit(conn, who, shown_rows, "/board")
    return Screen(
        page=shown, escalations=live, owners=owners, unacknowledged=sum(r["n"] for r in counts), oldest=oldest,
        grid=model.unacknowledged_grid(counts), open_by_ward=by_ward, tension=tension,
        sensitive_shown=any(r["classification"] == access.SENSITIVE for r in [*shown_rows, *silences]),
        silences=_by_ward([present.silence(r, svc.wards) for r in silences]),
    )


def _by_ward(silences: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in silences:
        out.setdefault(s["ward_code"], []).append(s)
    return out


@dataclass
class Analysis:
    by: str
    heat: dict[str, list[int]]
    segments: dict[str, list[model.Segment]]
    since: datetime


async def analysis(svc: QueryService, who: Reader, by: str, mode: str, now: datetime) -> Analysis:
    since = model.weeks_back(now)
    async with access.scoped(svc.pool, who) as conn:
        heat_rows = await board_queries.hour_of_week(conn, mode, since, by)
        at_start = await queries.levels_before(conn, mode, since)
        changes = [c for c in await board_queries.tension_since(conn, mode, since)
                   if access.may_see(who, c["classification"], None, None)]
    keys = sorted(svc.wards) if by == "ward" else []
    per_ward: dict[str, list] = {}
    for c in changes:
        per_ward.setdefault(c["ward_code"], []).append(c)
    segments = {
        code: model.tension_segments(at_start.get(code, "normal"), per_ward.get(code, []), since, now)
        for code in sorted(svc.wards)
    }
    return Analysis(by, model.heatmap(heat_rows, keys), segments, since)
