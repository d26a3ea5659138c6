"""The idempotency store: which event_ids intake has published, and where they landed.

A table in PostgreSQL's `intake` schema, written after the broker acknowledged and before
the client hears 202, so the same event_id sent again, also after a restart, returns the
original result. Single requests are coalesced into bulk statements (MicroBatcher).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import asyncpg
import orjson

from services.intake.batcher import MicroBatcher
from services.intake.registry import Change, IncidentRecord
from services.shared import keys, migrations
from services.shared.logging import get_logger

log = get_logger("intake.repository")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA = "intake"  # intake's tables live in a schema of their own
# The schema `intake` is made, owned by muster_intake, by `muster db migrate` (roles.sql): the
# role may not create schemas, only tables in its own (the migration runner creates none that exists).

LOOKUP = """
select event_id, incident_id, event_type, topic, partition, "offset", subject, digest
from intake.accepted_events where event_id = any($1::uuid[])
"""

# Claim each event_id before publishing it (one statement, in place of a plain look-up): its
# idempotency row if it has one ('done'); else an earlier attempt's pending claim ('pending'); else
# a claim made now, which returns no row: a batch of new event_ids (the usual case) reads back
# nothing. An id that is none of these ('contended') was claimed by a concurrent transaction that
# had not committed when this statement began.
# A report (`incident` set, with its registry record's fields) claims its incident in the same
# statement: a row in intake.incidents naming its event and this process, holding the record, which
# the report's idempotency row settles (a registry row is one that is not claimed, or whose report
# is recorded: SETTLED; no second write of the row per report). The primary
# key decides between two reports of one incident, in any process: the second inserts nothing and
# reads back 'reported' with the event that holds the incident (null when that claim is not
# visible to this statement: made concurrently, or by an earlier item of the same call, which is
# the one that claims it: `distinct on` in the items' order). An incident held by the report's own
# event (an earlier attempt of it) is its own. Inserted in key order: two calls claiming the same
# ids never wait on each other in a cycle.
CLAIM = """
with wanted as (
    select w.event_id, w.subject, decode(w.digest, 'hex') as digest, w.incident, w.n, w.r, w.a, w.k, w.s, w.req, w.m, w.c
    from rows from (json_to_recordset($1::json) as (event_id uuid, subject text, digest text, incident uuid, r text,
                                                    a text, k text, s text, req text[], m text, c text))
         with ordinality as w(event_id, subject, digest, incident, r, a, k, s, req, m, c, n)
), done as (
    select a.event_id, a.incident_id, a.event_type, a.topic, a.partition, a."offset", a.subject, a.digest
    from intake.accepted_events a where a.event_id in (select event_id from wanted)
), claimed as (
    insert into intake.pending_events (event_id, subject, digest, owner)
    select w.event_id, w.subject, w.digest, $2::uuid from wanted w
    where w.event_id not in (select event_id from done)
    order by w.event_id
    on conflict (event_id) do nothing
    returning event_id
), reporting as (
    insert into intake.incidents (incident_id, reported_event_id, claimed_by, reporter, reporting_agency, source_kind,
                                  source_id, agencies_required, mode, classification)
    select distinct on (w.incident) w.incident, w.event_id, $2::uuid, w.r, w.a, w.k, w.s, coalesce(w.req, '{}'), w.m, w.c
    from wanted w
    where w.incident is not null and w.event_id not in (select event_id from done)
    order by w.incident, w.n
    on conflict (incident_id) do nothing
    returning incident_id, reported_event_id
), earlier as (
    select p.event_id, p.subject, p.digest, p.owner, p.since
    from wanted w join intake.pending_events p on p.event_id = w.event_id  -- only the ids not claimed now are looked up
    where w.event_id not in (select event_id from done) and w.event_id not in (select event_id from claimed)
), reported as (
    select w.event_id, w.incident, i.reported_event_id, i.reported_at,
           w.event_id in (select event_id from claimed) as claimed_now,
           case when exists (select from intake.accepted_events a where a.event_id = i.reported_event_id)
                then null else i.claimed_by end as claimed_by  -- a record (settled): no owner
    from wanted w left join intake.incidents i on i.incident_id = w.incident
    where w.incident is not null and w.event_id not in (select event_id from done)
      and (w.incident, w.event_id) not in (select incident_id, reported_event_id from reporting)
      and (i.incident_id is not null and i.reported_event_id <> w.event_id
           or i.incident_id is null and w.event_id in (select event_id from claimed))
)
select 'done' as state, d.event_id, d.incident_id, d.event_type, d.topic, d.partition, d."offset", d.subject,
       d.digest, null::uuid as owner, null::timestamptz as since, null::uuid as holder, null::boolean as claimed
from done d
union all
select 'pending', e.event_id, null, null, null, null, null, e.subject, e.digest, e.owner, e.since, null, null from earlier e
union all
select 'contended', w.event_id, null, null, null, null, null, w.subject, w.digest, null, null, null, null from wanted w
where w.event_id not in (select event_id from done) and w.event_id not in (select event_id from claimed)
  and w.event_id not in (select event_id from earlier)
union all
select 'reported', r.event_id, r.incident, null, null, null, null, null, null, r.claimed_by, r.reported_at,
       r.reported_event_id, r.claimed_now
from reported r
"""

# A report's incident held by another event, whose claim is over and whose event is not on the
# topic, passes to this report only if it is still the claim that was read (and its report was never
# recorded). The row keeps the fields the abandoned claim wrote until this report's record fills them
# with its own (a report that took its incident over is not `registered`); meanwhile it is no record.
TAKE_OVER_REPORT = """
update intake.incidents set reported_event_id = $2, claimed_by = $3, reported_at = now()
where incident_id = $1 and claimed_by = $4 and reported_event_id = $5 and reported_at = $6
  and not exists (select from intake.accepted_events a where a.event_id = $5)
"""

# A pending claim passes to this process only if it is still the one that was read.
TAKE_OVER = """
update intake.pending_events set owner = $2, since = now() where event_id = $1 and owner = $3 and since = $4
"""

# A refused event gives up its claim, and a refused report the claim of its incident ($3: the
# incidents of the reports among them) if its event holds it.
RELEASE = """
with released as (
    delete from intake.pending_events where event_id = any($1::uuid[]) and owner = $2 returning event_id
)
delete from intake.incidents
where incident_id = any($3::uuid[]) and claimed_by is not null and reported_event_id in (select event_id from released)
"""

# The bulk writes take their rows as one JSON document (json_to_recordset): asyncpg encodes a
# thousand-element array parameter element by element, which cost intake more CPU per batch
# than the rest of the write (17 arrays for a batch of reports); orjson writes the document in
# a fraction of that.
# The idempotency rows, the pending claims they settle and the registry records of the reports
# among them that their claims did not write ($2, '[]' when none) are one statement: one round trip,
# and no transaction of its own to begin and commit (the registry changes, when a batch has any,
# follow it in one transaction). A report whose claim wrote its record (`Written.registered`: the
# usual case) is settled by its idempotency row alone. Another report's record fills its incident's
# claim (the row its event claimed becomes the registry row: an earlier attempt's claim, or one
# taken over), or is the row (a report that claimed nothing: an incident whose id intake minted just
# now); a settled row, or one another event claimed, is left as it is (the first report is the only one).
RECORD = """
with accepted as materialized (  -- the rows' document read once
    select * from json_to_recordset($1::json) as r(e uuid, i uuid, t text, topic text, p integer, o bigint, s text, d text)
), settled as (
    delete from intake.pending_events where event_id in (select e from accepted)
), registered as (
    insert into intake.incidents (incident_id, reporter, reporting_agency, source_kind, source_id, agencies_required,
                                  mode, classification, reported_event_id)
    select r.i, r.r, r.a, r.k, r.s, coalesce(r.req, '{}'), r.m, r.c, r.e
    from json_to_recordset($2::json) as r(i uuid, r text, a text, k text, s text, req text[], m text, c text, e uuid)
    on conflict (incident_id) do update set
        reporter = excluded.reporter, reporting_agency = excluded.reporting_agency,
        source_kind = excluded.source_kind, source_id = excluded.source_id,
        agencies_required = excluded.agencies_required, mode = excluded.mode,
        classification = excluded.classification, claimed_by = null, updated_at = now()
    where incidents.claimed_by is not null and incidents.reported_event_id = excluded.reported_event_id
)
insert into intake.accepted_events (event_id, incident_id, event_type, topic, partition, "offset", subject, digest)
select r.e, r.i, r.t, r.topic, r.p, r.o, r.s, decode(r.d, 'hex') from accepted r
on conflict (event_id) do nothing
"""

# Which of these records are in the store (the others were lost: the database restarted before
# flushing them), and the end of the WAL now (past every commit this statement can see).
PRESENT = """
select pg_current_wal_insert_lsn() as lsn,
       array(select w.e from unnest($1::uuid[]) w(e)
             where not exists (select from intake.accepted_events a where a.event_id = w.e)) as missing
"""

# A registry row: not claimed (its record filled it), or claimed by a report that is recorded (the
# claim wrote the record; the report's idempotency row settles it). Else an incident being reported
# (or whose report was never published): facts about it are refused as about no incident.
SETTLED = "(i.claimed_by is null or exists (select from intake.accepted_events a where a.event_id = i.reported_event_id))"

INCIDENTS = f"""
select incident_id, reporter, reporting_agency, source_kind, source_id, agencies_required, mode, classification,
       terminal, lead_incident_id
from intake.incidents i where incident_id = any($1::uuid[]) and {SETTLED}
"""

CHANGE = f"""
update intake.incidents i set
    agencies_required = array(select distinct a from unnest(i.agencies_required || $2::text[]) a
                              where a <> all($3::text[]) order by a),
    classification = case when $4::text = 'OFFICIAL-SENSITIVE' then $4::text else i.classification end,
    terminal = i.terminal or $5,
    lead_incident_id = coalesce(i.lead_incident_id, $6),  -- the first link stands (as escalation keeps it)
    updated_at = now()
where incident_id = $1 and {SETTLED}
"""


# A calendar item (a planned event or a silence) is made its registering caller's agency's, or
# read back as it is: one statement, twice at most (a concurrent statement's insert of the same id,
# committed while this one waited on it, is not in this statement's snapshot: the second run reads it).
CLAIM_CALENDAR_ITEM = """
with made as (
    insert into intake.calendar_items (item_id, kind, agency, subject) values ($1, $2, $3, $4)
    on conflict (item_id) do nothing
    returning kind, agency, subject, cancelled
)
select kind, agency, subject, cancelled from made
union all
select kind, agency, subject, cancelled from intake.calendar_items where item_id = $1 and not exists (select from made)
"""
CALENDAR_ITEM = "select kind, agency, subject, cancelled from intake.calendar_items where item_id = $1"
CANCEL_CALENDAR_ITEM = "update intake.calendar_items set cancelled = true where item_id = $1"


class CalendarItem(NamedTuple):
    """A planned event or a silence as intake registered it: whose it is, and whether it was cancelled."""

    kind: str  # planned_event | silence
    agency: str
    subject: str
    cancelled: bool = False


class Accepted(NamedTuple):  # a tuple: built per accepted event, about 3x cheaper than a frozen dataclass
    """Where the broker put an event: the result intake returns, now and on every retry."""

    event_id: uuid.UUID
    incident_id: uuid.UUID
    event_type: str
    topic: str
    partition: int
    offset: int
    subject: str | None = None  # who sent it (token subject); None in rows older than the registry
    digest: bytes | None = None  # of the request payload (validation.payload_digest)


class Written(NamedTuple):
    """What one accepted event writes: its idempotency row, and what it changes in the registry."""

    accepted: Accepted
    report: IncidentRecord | None = None
    change: Change | None = None
    # A report whose claim of its incident wrote `report` (the store granted that claim to this
    # attempt): its idempotency row settles it. False (always safe): the record writes `report`.
    registered: bool = False


def as_written(item: "Written | Accepted") -> "Written":
    """A bare Accepted (an event that changes nothing in the registry) as what the store writes."""
    return item if isinstance(item, Written) else Written(item)


class Pending(NamedTuple):
    """An earlier attempt to publish an event_id that has no idempotency row yet: still in flight,
    or its publisher died between the broker's acknowledgement and the row (or before sending)."""

    event_id: uuid.UUID
    subject: str | None
    digest: bytes | None
    owner: uuid.UUID | None  # the intake process that claimed it (None: a claim not committed yet)
    since: datetime


class Reported(NamedTuple):
    """A report's incident is held by another event: its report's claim (in flight, or its publisher
    died), or its registry record. `event_id`, `owner` and `since` are None when that is not known:
    claimed by a concurrent statement, or by an earlier item of the same call; `owner` is None for a
    record (settled)."""

    incident_id: uuid.UUID
    event_id: uuid.UUID | None
    owner: uuid.UUID | None
    since: datetime | None
    # The report's own event_id was claimed by this call (new): refused, that claim is given up. Else
    # the event's claim is another attempt's, perhaps another caller's in flight, and is left alone (a
    # batch item reusing another request's event_id, as a second report, released that request's claim).
    claimed: bool = False


class StoreUnavailable(RuntimeError):
    pass


# What a database that went away raises: a connection lost mid-statement is asyncpg's InterfaceError
# (ConnectionDoesNotExistError, and a transaction's exit on it), no PostgresError: it was a 500 when
# PostgreSQL was stopped during a record with registry changes (muster chaos, postgres_immediate).
DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Our statements change no session state, so a connection returned to the pool needs
    no RESET ALL round trip (asyncpg's default costs one per query)."""


# Intake-minted event ids (no event_id, no Idempotency-Key) are recorded write-behind, at
# most this long after the answer: a client cannot retry what it has not yet been told.
WRITE_BEHIND_S = 0.02

# The single path's records (`record`, coalesced by the MicroBatcher) commit on connections
# whose commits do not wait for the WAL flush (synchronous_commit=off): committed, they are
# visible to every reader at once (another replica's registry look-up included), but an fsync
# of the WAL that the disk holds up (50-160 ms on this machine while the kernel writes back the
# broker's log segments) no longer holds every single request behind it. They are durable once
# the WAL is flushed past them, within wal_writer_delay (200 ms); `confirm` says when, and which
# were lost instead (the database restarted first), for the caller to write again.
QUICK_COMMIT = {"synchronous_commit": "off"}
CONFIRM_POLL_S = 0.02


# event_id, subject, digest, and a report's registry record (its incident claimed with it)
Claim = tuple[uuid.UUID, "str | None", "bytes | None", "IncidentRecord | None"]


class IdempotencyStore:
    def __init__(self, dsn: str, timeout_s: float, owner: uuid.UUID | None = None) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self.owner = owner or uuid.uuid4()  # this process, in the pending claims it makes
        self._pool: asyncpg.Pool | None = None
        self._quick: asyncpg.Pool | None = None  # QUICK_COMMIT: the single path's records
        self._lock = asyncio.Lock()
        self._lookups: MicroBatcher[uuid.UUID, Accepted | None] = MicroBatcher(self._lookup_bulk)
        self._claims: MicroBatcher[Claim, Accepted | Pending | Reported | None] = MicroBatcher(self._claim_bulk)
        self._keys: MicroBatcher[uuid.UUID, bytes | None] = MicroBatcher(self._keys_bulk)
        self._incidents: MicroBatcher[uuid.UUID, IncidentRecord | None] = MicroBatcher(self._incidents_bulk)
        self._records: MicroBatcher[Written, None] = MicroBatcher(self._record_quick)
        self._soon: list[Written] = []
        self._soon_task: asyncio.Task | None = None
        # The write-behind rows not written yet, by event_id: answered (and the caller told the id)
        # before their rows exist, so a claim of one of these ids meanwhile is its replay, never a
        # first claim (a batch naming a just-minted id published another event under it; red-team).
        self._soon_ids: dict[uuid.UUID, Accepted] = {}

    async def start(self) -> None:
        try:
            await self._ensure_pool()
        except StoreUnavailable:
            pass  # retried on first use; /readyz says so meanwhile

    async def stop(self) -> None:
        if self._soon_task is not None:
            await asyncio.gather(self._soon_task, return_exceptions=True)
        if self._quick is not None:
            await self._quick.close()
            self._quick = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> bool:
        try:
            pool = await self._ensure_pool()
            await pool.fetchval("select 1", timeout=self._timeout_s)
            return True
        except (StoreUnavailable, OSError, asyncpg.PostgresError, asyncio.TimeoutError):
            return False

    async def lookup(self, event_id: uuid.UUID) -> Accepted | None:
        return await self._lookups.submit(event_id)

    async def lookup_many(self, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, Accepted]:
        found = await self._lookup_bulk(event_ids)
        return {a.event_id: a for a in found if a is not None}

    async def claim(self, event_id: uuid.UUID, subject: str | None, digest: bytes | None,
                    report: IncidentRecord | None = None) -> Accepted | Pending | Reported | None:
        """Before publishing: the event's idempotency row if it has one; else, for a report (`report`:
        its registry record), Reported if another event holds its incident; else an earlier attempt's
        pending claim; else None, and the event (and the report's incident, holding `report`, which the
        event's record settles: `Written.registered`) is now claimed by this process."""
        return await self._claims.submit((event_id, subject, digest, report))

    async def claim_many(self, claims: list[Claim]) -> dict[uuid.UUID, Accepted | Pending | Reported]:
        """`claim` for many: the ids that had a row or an earlier claim (the others are claimed now)."""
        found = await self._claim_bulk(claims) if claims else []
        return {c[0]: f for c, f in zip(claims, found) if f is not None}

    async def take_over(self, pending: Pending) -> bool:
        """Make an earlier attempt's claim this process's (False: it changed meanwhile)."""
        if pending.owner is None:
            return False
        result = await self._execute(TAKE_OVER, pending.event_id, self.owner, pending.owner, pending.since)
        return result.endswith(" 1")

    async def take_over_report(self, reported: Reported, event_id: uuid.UUID) -> bool:
        """Make an incident another event claimed (its claim over, its event not on the topic) this
        event's, claimed by this process (False: the claim changed meanwhile)."""
        if reported.owner is None or reported.event_id is None:
            return False
        result = await self._execute(TAKE_OVER_REPORT, reported.incident_id, event_id, self.owner, reported.owner,
                                     reported.event_id, reported.since)
        return result.endswith(" 1")

    async def release(self, event_ids: list[uuid.UUID], incident_ids: Collection[uuid.UUID] = ()) -> None:
        """Drop this process's claims of events it did not publish (refused), and of the incidents
        (of the reports among them) that those events claimed."""
        if event_ids:
            await self._execute(RELEASE, event_ids, self.owner, list(incident_ids))

    async def _execute(self, statement: str, *args) -> str:
        pool = await self._ensure_pool()
        try:
            return await pool.execute(statement, *args, timeout=self._timeout_s)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc

    async def _claim_bulk(self, claims: list[Claim]) -> list[Accepted | Pending | Reported | None]:
        if self._soon_ids and any(c[0] in self._soon_ids for c in claims):
            behind = {c[0]: self._soon_ids[c[0]] for c in claims if c[0] in self._soon_ids}
            rest = [c for c in claims if c[0] not in behind]
            found = dict(zip((c[0] for c in rest), await self._claim_bulk(rest))) if rest else {}
            return [behind.get(c[0]) or found.get(c[0]) for c in claims]
        pool = await self._ensure_pool()
        ids = [c[0] for c in claims]
        try:
            rows = await pool.fetch(CLAIM, _json([_claim_row(c) for c in claims]), self.owner, timeout=self._timeout_s)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        if not rows:  # all claimed now
            return [None] * len(claims)
        found: dict[uuid.UUID, Accepted | Pending | Reported] = {}
        now = datetime.now(timezone.utc)
        for r in rows:
            state, event_id = r["state"], r["event_id"]
            if state == "done":
                found[event_id] = Accepted(event_id, r["incident_id"], r["event_type"], r["topic"], r["partition"],
                                           r["offset"], r["subject"], r["digest"])
            elif state == "reported":  # before an earlier attempt's claim of the event: the incident is another's
                found[event_id] = Reported(r["incident_id"], r["holder"], r["owner"], r["since"], r["claimed"])
            elif not isinstance(found.get(event_id), Reported):
                # an earlier attempt's claim; or a concurrent transaction's, not committed yet (owner None)
                found[event_id] = Pending(event_id, r["subject"], r["digest"], r["owner"], r["since"] or now)
        return [found.get(i) for i in ids]

    async def claim_calendar_item(self, item_id: uuid.UUID, kind: str, agency: str, subject: str) -> CalendarItem:
        """The planned event or silence `item_id`, made this caller's agency's if it is new."""
        pool = await self._ensure_pool()
        try:
            for _ in range(2):
                row = await pool.fetchrow(CLAIM_CALENDAR_ITEM, item_id, kind, agency, subject, timeout=self._timeout_s)
                if row is not None:
                    return CalendarItem(*row)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        raise StoreUnavailable(f"calendar item {item_id}: neither made nor found")

    async def calendar_item(self, item_id: uuid.UUID) -> CalendarItem | None:
        pool = await self._ensure_pool()
        try:
            row = await pool.fetchrow(CALENDAR_ITEM, item_id, timeout=self._timeout_s)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        return CalendarItem(*row) if row is not None else None

    async def record_calendar(self, accepted: Accepted, cancelled: uuid.UUID | None = None) -> None:
        """A calendar fact's idempotency row, settling its claim, and (`cancelled`) its item marked
        cancelled, in one transaction; durable when it returns."""
        pool = await self._ensure_pool()
        try:
            async with pool.acquire(timeout=self._timeout_s) as conn:
                async with conn.transaction():
                    await conn.execute(RECORD, _accepted_rows([Written(accepted)]), "[]", timeout=self._timeout_s)
                    if cancelled is not None:
                        await conn.execute(CANCEL_CALENDAR_ITEM, cancelled, timeout=self._timeout_s)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc

    async def incident(self, incident_id: uuid.UUID) -> IncidentRecord | None:
        """The registry's record of an incident (None: intake never accepted its report)."""
        return await self._incidents.submit(incident_id)

    async def incidents(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, IncidentRecord]:
        found = await self._incidents_bulk(incident_ids) if incident_ids else []
        return {r.incident_id: r for r in found if r is not None}

    async def record(self, written: Written | Accepted) -> None:
        """Committed (visible to every reader) when it returns, durable shortly after (QUICK_COMMIT):
        `confirm` it."""
        await self._records.submit(as_written(written))

    async def confirm(self, written: list[Written]) -> list[Written]:
        """Of records `record` committed: those not in the store (lost: the database restarted before
        it flushed them; write them again), once the WAL is flushed past every other one (durable).
        One connection throughout, so one run of the server: a record found is one whose commit
        precedes the WAL position read with it. StoreUnavailable when the database cannot say."""
        if not written:
            return []
        pool = await self._ensure_pool()
        try:
            async with pool.acquire(timeout=self._timeout_s) as conn:
                present = await conn.fetchrow(PRESENT, [w.accepted.event_id for w in written], timeout=self._timeout_s)
                while await conn.fetchval("select pg_current_wal_flush_lsn()", timeout=self._timeout_s) < present["lsn"]:
                    await asyncio.sleep(CONFIRM_POLL_S)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        if not present["missing"]:
            return []
        missing = set(present["missing"])
        return [w for w in written if w.accepted.event_id in missing]

    async def keys_for_sealing(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """The incidents' data keys from the key service (made if new); PeopleErased for an erased one.
        One incident's (a single request's) is fetched together with those of the other requests
        waiting at that moment, as the look-ups are."""
        if len(incident_ids) == 1:
            key = await self._keys.submit(incident_ids[0])
            found = {incident_ids[0]: key}
        else:
            found = await self._keys_or_erased(incident_ids)
        erased = [i for i, key in found.items() if key is None]
        if erased:
            raise keys.PeopleErased(erased)
        return found

    async def _keys_bulk(self, incident_ids: list[uuid.UUID]) -> list[bytes | None]:
        found = await self._keys_or_erased(incident_ids)
        return [found[i] for i in incident_ids]

    async def _keys_or_erased(self, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
        pool = await self._ensure_pool()
        try:
            async with pool.acquire(timeout=self._timeout_s) as conn:
                return await keys.keys_or_erased(conn, incident_ids)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"key service: {exc.__class__.__name__}") from exc

    def record_soon(self, written: Written) -> None:
        """Write-behind: recorded within WRITE_BEHIND_S, in bulk, off the request's path (only for
        events that change nothing in the registry)."""
        written = as_written(written)
        self._soon.append(written)
        self._soon_ids[written.accepted.event_id] = written.accepted
        if self._soon_task is None or self._soon_task.done():
            self._soon_task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(WRITE_BEHIND_S)
        while self._soon:
            rows, self._soon = self._soon[:1000], self._soon[1000:]
            try:
                await self._record_bulk(rows)
            except StoreUnavailable as exc:
                log.error("idempotency store write-behind failed", count=len(rows), error=str(exc))
            finally:
                for written in rows:
                    self._soon_ids.pop(written.accepted.event_id, None)

    async def record_many(self, written: list[Written | Accepted]) -> None:
        if written:
            await self._record_bulk([as_written(w) for w in written])

    async def _lookup_bulk(self, event_ids: list[uuid.UUID]) -> list[Accepted | None]:
        pool = await self._ensure_pool()
        try:
            rows = await pool.fetch(LOOKUP, event_ids, timeout=self._timeout_s)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        found = {row["event_id"]: Accepted(*row) for row in rows}
        return [found.get(event_id) for event_id in event_ids]

    async def _incidents_bulk(self, incident_ids: list[uuid.UUID]) -> list[IncidentRecord | None]:
        pool = await self._ensure_pool()
        try:
            rows = await pool.fetch(INCIDENTS, incident_ids, timeout=self._timeout_s)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"incident registry: {exc.__class__.__name__}") from exc
        found = {
            r["incident_id"]: IncidentRecord(
                incident_id=r["incident_id"], reporter=r["reporter"], reporting_agency=r["reporting_agency"],
                source_kind=r["source_kind"], source_id=r["source_id"], agencies_required=tuple(r["agencies_required"]),
                mode=r["mode"], classification=r["classification"], terminal=r["terminal"],
                lead_incident_id=r["lead_incident_id"],
            )
            for r in rows
        }
        return [found.get(i) for i in incident_ids]

    async def _record_quick(self, written: list[Written]) -> list[None]:
        await self._ensure_pool()
        return await self._record_bulk(written, self._quick)

    async def _record_bulk(self, written: list[Written], pool: asyncpg.Pool | None = None) -> list[None]:
        """Idempotency rows and registry records of these events: one statement (one transaction with
        the registry changes, when there are any); durable before it returns, unless on `pool`
        QUICK_COMMIT's."""
        pool = pool or await self._ensure_pool()
        rows = _accepted_rows(written)
        reports = {}  # by incident: one row each (an upsert may touch a row once a statement)
        for a, r, _, registered in written:
            if r is not None and not registered and r.incident_id not in reports:
                reports[r.incident_id] = {"i": r.incident_id, "r": r.reporter, "a": r.reporting_agency,
                                          "k": r.source_kind, "s": r.source_id, "req": r.agencies_required,
                                          "m": r.mode, "c": r.classification, "e": a.event_id}
        changes = [w.change.as_row() for w in written if w.change is not None]
        try:
            if not changes:
                await pool.execute(RECORD, rows, _json(list(reports.values())), timeout=self._timeout_s)
                return [None] * len(written)
            async with pool.acquire(timeout=self._timeout_s) as conn:
                async with conn.transaction():  # the reports registered first: a change may be about one
                    await conn.execute(RECORD, rows, _json(list(reports.values())), timeout=self._timeout_s)
                    await conn.executemany(CHANGE, changes, timeout=self._timeout_s)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
        return [None] * len(written)

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=8, timeout=self._timeout_s, reset=_keep_session
                    )
                except DATABASE_ERRORS as exc:
                    raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
                try:
                    async with pool.acquire(timeout=self._timeout_s) as conn:
                        await migrations.migrate(conn, MIGRATIONS_DIR, SCHEMA)
                    quick = await asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=2, timeout=self._timeout_s, reset=_keep_session,
                        server_settings=QUICK_COMMIT,
                    )
                except DATABASE_ERRORS as exc:
                    await pool.close()
                    raise StoreUnavailable(f"idempotency store: {exc.__class__.__name__}") from exc
                self._quick, self._pool = quick, pool
        return self._pool


def _accepted_rows(written: list[Written]) -> str:
    """RECORD's idempotency rows ($1)."""
    return _json([{"e": a.event_id, "i": a.incident_id, "t": a.event_type, "topic": a.topic, "p": a.partition,
                   "o": a.offset, "s": a.subject, "d": a.digest.hex() if a.digest is not None else None}
                  for a, *_ in written])


def _claim_row(claim: Claim) -> dict:
    event_id, subject, digest, report = claim
    row = {"event_id": event_id, "subject": subject, "digest": digest.hex() if digest else None}
    if report is not None:  # the incident claimed with the record it will hold
        row.update(incident=report.incident_id, r=report.reporter, a=report.reporting_agency, k=report.source_kind,
                   s=report.source_id, req=report.agencies_required, m=report.mode, c=report.classification)
    return row


def _json(rows: list[dict]) -> str:
    """Rows for json_to_recordset (ids read back from the store are asyncpg's own UUID type)."""
    return orjson.dumps(rows, default=str).decode()
