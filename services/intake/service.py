"""Accepting events: claim the event_id, publish with the ack bound, remember the result.

Only the broker's acknowledgement makes an event accepted; the result is recorded in the
idempotency store before the caller hears it, so the same event_id later returns it. The
event_id is claimed (pending) before it is published: a retry that finds a claim with no result
(its publisher died between the broker's acknowledgement and the record) looks for the event on
the topic and returns where it landed, rather than publishing a second copy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Collection
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from aiokafka.structs import RecordMetadata

from services.intake import guard, registry
from services.intake.metrics import IntakeMetrics
from services.intake.ports import IdempotencyStorePort, KeyServicePort, PublisherPort
from services.intake.registry import IncidentRecord
from services.intake.publisher import BrokerUnavailable
from services.intake.repository import Accepted, Pending, Reported, StoreUnavailable, Written
from services.intake.validation import Rejection
from services.shared import keys, sealing
from services.shared.auth import Principal
from services.shared.events import IncidentEvent, IncidentLinked, IncidentReported
from services.shared.logging import get_logger

log = get_logger("intake.service")


# Batch requests validated or checked at once (the others wait their turn, see IntakeService.turn).
BATCH_TURNS = 2


# A claim older than this whose event is not on the topic was never sent, or failed: its
# publisher has had twice the acknowledgement bound (the producer's own request timeout).
CLAIM_BOUNDS = 2


class Unavailable(RuntimeError):
    """The broker or the idempotency store could not confirm in time: answer 503."""


class ItemResult(NamedTuple):  # a tuple: one per batch item, a third of a frozen dataclass's cost
    index: int
    accepted: Accepted | None = None
    rejection: Rejection | None = None
    event_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None


class Holds:
    """The first-report rule, and the checks of facts that read and change an incident's state,
    inside this process, across concurrent requests.

    A report that passes its check `hold`s its incident (in the same step, no await between): a
    second report of it is then refused (409) until the first is over. A fact whose check reads
    state that another fact changes holds what it reads and what it changes (`guard.state_held`: a
    link reads whether its incident and its lead are linked and links its incident; a close
    finishes its incident; a declaration reads whether its incident is finished or linked): a fact
    that would change what another holds as read, or read what another changes, is refused (409, to
    be sent again and checked against the other). Two sent at once were each checked against the
    registry as it was before the other (two links closing a cycle, a declaration beside the close
    that finished its incident); facts that only read (two declarations), or change what no check
    reads (a status change that finishes nothing), go on side by side. A published fact's hold
    outlives its request until every registry look-up that was open when its record was written is
    over (`settle`): such a look-up may have read the registry before the record was committed, and
    its check must still find the incident held. A look-up opened after that reads the record. A
    fact that was not published lets go at once (`release`: its retry is no second report)."""

    def __init__(self) -> None:
        self._held: set[uuid.UUID] = set()  # incidents being reported
        self._state: collections.Counter = collections.Counter()  # ("r" | "w", (aspect, incident)) -> holders
        self._open: dict[int, list[list]] = {}  # open look-up -> the settled holds waiting on it
        self._next = 0

    def __contains__(self, incident_id: uuid.UUID) -> bool:
        return incident_id in self._held

    def hold(self, incident_id: uuid.UUID) -> None:
        """Refuse (409) a report whose incident is held, else hold it: one synchronous step."""
        if incident_id in self._held:
            raise guard.repeated_report(incident_id)
        self._held.add(incident_id)

    def hold_state(self, reads: Collection[tuple], writes: Collection[tuple],
                   mine: collections.Counter | None = None) -> list[tuple]:
        """Refuse (409) a fact that would change what another holds as read, or read what another
        changes (`guard.state_held`'s (aspect, incident) pairs); else hold what it reads and changes,
        and return those holds (to settle or release). Two changes of one thing that no check reads
        (two closes) go on side by side. `mine`: the holds of the same request (a batch's earlier
        items, which its later items are checked against), which never refuse it."""
        state, mine = self._state, mine or {}
        for aspect in writes:
            if state[("r", aspect)] - mine.get(("r", aspect), 0) > 0:
                raise guard.being_changed(aspect[1])
        for aspect in reads:
            if state[("w", aspect)] - mine.get(("w", aspect), 0) > 0:
                raise guard.being_changed(aspect[1])
        keys = [("r", a) for a in reads] + [("w", a) for a in writes]
        state.update(keys)
        return keys

    def open(self) -> int:
        """Before a registry look-up whose result a report's check reads."""
        self._next += 1
        self._open[self._next] = []
        return self._next

    def close(self, reader: int) -> None:
        """After that check (its own reports held)."""
        for waiting in self._open.pop(reader, ()):
            waiting[0] -= 1
            if not waiting[0]:
                self._let_go(waiting[1])

    def settle(self, holds: Collection) -> None:
        """Facts published (and their records written): let go once the look-ups open now are over.
        `holds`: reports' incidents, or what `hold_state` returned."""
        if not holds:
            return
        if not self._open:
            self._let_go(holds)
            return
        waiting = [len(self._open), tuple(holds)]
        for held in self._open.values():
            held.append(waiting)

    def release(self, holds: Collection) -> None:
        """Facts not published: let go now."""
        self._let_go(holds)

    def _let_go(self, holds: Collection) -> None:
        for hold in holds:
            if type(hold) is tuple:
                self._state[hold] -= 1
                if self._state[hold] <= 0:
                    del self._state[hold]
            else:
                self._held.discard(hold)


class IntakeService:
    def __init__(self, publisher: PublisherPort, store: IdempotencyStorePort, metrics: IntakeMetrics, timeout_s: float,
                 keys: KeyServicePort | None = None) -> None:
        self._publisher = publisher
        self._store = store
        self._keys = keys  # None: no key service, so a fact with people is refused (never published in the clear)
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._inflight: dict[uuid.UUID, tuple[str, bytes | None, asyncio.Future[Accepted]]] = {}
        self._holds = Holds()  # incidents whose report, or a change of whose state, this process is publishing
        self._background: set[asyncio.Task] = set()
        # Published and answered, but the store did not take their records (the database went away
        # between the look-up and the write): written again until it does, and read by every
        # registry look-up meanwhile, so the incident's next fact is not refused as unknown.
        self._unrecorded: list[Written] = []
        self._rerecording: asyncio.Task | None = None
        # Recorded one at a time (`record`: committed, visible, not yet known durable), until the store
        # confirms them; those it lost meanwhile (a database restart) are written again. The reports
        # among them, by incident, are read by every registry look-up meanwhile (as `_unrecorded` is).
        self._unconfirmed: list[Written] = []
        self._unconfirmed_reports: dict[uuid.UUID, IncidentRecord] = {}
        self._confirming: asyncio.Task | None = None
        self._turns = asyncio.Semaphore(BATCH_TURNS)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One of BATCH_TURNS for the CPU-bound part of a batch (validating, checking a thousand
        items in one go, no await): many at once would hold the event loop past the bound of every
        other request's database look-up. A batch does not hold a turn while it waits for the
        broker or PostgreSQL. The turn is given back only after the loop has run once more (so at
        most BATCH_TURNS such parts run between two polls of the loop, however many batches
        arrive at once)."""
        async with self._turns:
            try:
                yield
            finally:
                await asyncio.sleep(0)

    async def submit(
        self, event: IncidentEvent, principal: Principal, given: Collection[str] = (), digest: bytes | None = None,
        *, fresh: bool = False,
    ) -> Accepted:
        """One event: its original result if this caller already sent it, else checked against the
        incident (guard.py), published and recorded. `fresh`: intake minted the event_id just now,
        so it cannot have been seen before."""
        if fresh:
            return await self._publish_new(event, principal, given, digest, fresh=True)
        running = self._inflight.get(event.event_id)
        if running is not None:  # the same event_id is being published right now: share its outcome
            _same_sender(running[0], running[1], principal, digest, event.event_id)
            return await asyncio.shield(running[2])
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "exception never retrieved"
        self._inflight[event.event_id] = (principal.subject, digest, future)
        try:
            result = await self._submit(event, principal, given, digest)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else Unavailable("cancelled"))
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[event.event_id]

    async def _submit(self, event: IncidentEvent, principal: Principal, given, digest) -> Accepted:
        report = event.event_type == "IncidentReported"  # claims its incident with its event_id
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await self._store.claim(event.event_id, principal.subject, digest,
                                                registry.record_of(event, principal.subject) if report else None)
        except (StoreUnavailable, TimeoutError) as exc:
            raise Unavailable(f"idempotency store did not answer: {exc}") from None
        if isinstance(found, Accepted):
            _same_sender(found.subject, found.digest, principal, digest, event.event_id)
            self._metrics.events.labels("duplicate").inc()
            _log_accepted(found, "duplicate")
            return found
        incidents = [event.incident_id] if report else []
        if isinstance(found, Reported):  # another event holds the incident: a second report
            if not await self._reclaimed(event, found):
                if _claimed_now(found):  # else the event_id's claim is another attempt's: left as it is
                    await self._release([event.event_id], incidents)
                raise guard.repeated_report(event.incident_id)
        elif found is not None:
            _same_sender(found.subject, found.digest, principal, digest, event.event_id)
            [metadata] = await self._search([(event, found.since)])
            landed = await self._recover(event, found, principal, digest, metadata)
            if landed is not None:
                return landed
        try:  # a report's claim granted now wrote its record (`registered`); one taken over or retried did not
            return await self._publish_new(event, principal, given, digest, claimed=report,
                                           registered=report and found is None)
        except Rejection:
            await self._release([event.event_id], incidents)
            raise

    def _may_reclaim(self, held: Reported) -> bool:
        """A claim of the incident that is over: older than the bound and not in flight in this process
        (a record, or a claim made just now, never is), by a report whose event_id this call claimed
        (one whose event_id is another attempt's claim, perhaps another caller's, takes nothing over)."""
        if not held.claimed or held.owner is None or held.event_id is None or held.since is None:
            return False
        return (held.incident_id not in self._holds
                and datetime.now(timezone.utc) - held.since > timedelta(seconds=CLAIM_BOUNDS * self._timeout_s))

    async def _reclaimed(self, event: IncidentEvent, held: Reported) -> bool:
        """Whether a report takes over its incident from the event that claimed it: only a claim that
        is over (`_may_reclaim`) whose event is not on the topic (it never reached the broker). Else
        the incident is reported, or being reported: 409."""
        if not self._may_reclaim(held):
            return False
        [landed] = await self._search([(_holder(event, held), held.since)])
        return await self._take_over_report(event, held, landed)

    async def _take_over_report(self, event: IncidentEvent, held: Reported, landed: RecordMetadata | None) -> bool:
        if landed is not None:
            return False
        try:
            return await self._store.take_over_report(held, event.event_id)
        except StoreUnavailable as exc:
            raise Unavailable(f"idempotency store did not answer: {exc}") from None

    async def _search(self, wanted: list[tuple[IncidentEvent, datetime]],
                      timeout_s: float | None = None) -> list[RecordMetadata | None]:
        """Where earlier attempts' events landed on the topic (one read for them all)."""
        try:
            return await self._publisher.find_many(wanted, timeout_s)
        except BrokerUnavailable as exc:
            raise Unavailable(str(exc)) from None

    async def _recover(self, event: IncidentEvent, pending: Pending, principal: Principal, digest: bytes | None,
                       metadata: RecordMetadata | None) -> Accepted | None:
        """An earlier attempt claimed this event_id and left no result; `metadata` is where the event
        landed on the topic (None: it is not there). If it is there, record and return where it
        landed; if it is not and that attempt is over (this process's own, or older than the bound),
        take the claim over and return None (publish it); else the attempt may still be in flight in
        another process: Unavailable (retry shortly)."""
        if metadata is not None:
            written = self._written(event, metadata, principal, digest)
            await self._remember([written])
            self._metrics.events.labels("recovered").inc()
            _log_accepted(written.accepted, "recovered")
            return written.accepted
        over = datetime.now(timezone.utc) - pending.since > timedelta(seconds=CLAIM_BOUNDS * self._timeout_s)
        if pending.owner == self._store.owner:
            return None
        try:
            if over and await self._store.take_over(pending):
                return None
        except StoreUnavailable as exc:
            raise Unavailable(f"idempotency store did not answer: {exc}") from None
        raise Unavailable(f"event {event.event_id} is being published by another request; retry shortly")

    async def _recovered(self, valid: list[tuple[int, IncidentEvent]], found: dict, principal: Principal,
                         digests: list[bytes | None], timeout_s: float,
                         ) -> dict[uuid.UUID, Accepted | Unavailable | Rejection | None]:
        """What `_recover` says of each event_id of a batch that an earlier attempt claimed and left
        without a result (its publish timed out, or its publisher died between the broker's ack and
        the record), and `_reclaimed` of each report whose incident another event holds (None:
        publish it; else 409), asked before the checks and outside the turn. Every event they ask
        about is looked for on the topic in one read, within `timeout_s` (what is left of the
        request's look-up bound); when the broker cannot say, each of them is Unavailable."""
        landed: dict[uuid.UUID, Accepted | Unavailable | Rejection | None] = {}
        if not found:  # the usual batch: every event_id new, no incident held (no hash of 1,000 UUIDs)
            return landed
        asked: list[tuple[int, IncidentEvent, Pending | Reported]] = []
        seen: set[uuid.UUID] = set()
        for index, item in valid:
            hit = found.get(item.event_id)
            if item.event_id in seen:
                continue
            seen.add(item.event_id)
            if type(hit) is Reported:
                if self._may_reclaim(hit):
                    asked.append((index, item, hit))
                else:
                    landed[item.event_id] = guard.repeated_report(item.incident_id)
            elif isinstance(hit, Pending):
                try:
                    _same_sender(hit.subject, hit.digest, principal, digests[index], item.event_id)
                except Rejection:
                    continue  # refused in the checks
                asked.append((index, item, hit))
        if not asked:
            return landed
        try:
            where = await self._search([(_holder(item, hit) if type(hit) is Reported else item, hit.since)
                                        for _, item, hit in asked], timeout_s)
        except Unavailable as exc:
            return landed | {item.event_id: exc for _, item, _ in asked}
        for (index, item, hit), metadata in zip(asked, where):
            try:
                if type(hit) is Reported:
                    landed[item.event_id] = (None if await self._take_over_report(item, hit, metadata)
                                             else guard.repeated_report(item.incident_id))
                else:
                    landed[item.event_id] = await self._recover(item, hit, principal, digests[index], metadata)
            except Unavailable as exc:
                landed[item.event_id] = exc
        return landed

    async def _release(self, event_ids: list[uuid.UUID], incident_ids: Collection[uuid.UUID] = ()) -> None:
        """Give up the claims of events refused (a retry then answers the same refusal afresh), and of
        the incidents the reports among them claimed."""
        try:
            await self._store.release(event_ids, incident_ids)
        except StoreUnavailable as exc:
            log.warning("could not release claims", count=len(event_ids), error=str(exc))

    async def _records(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, IncidentRecord]:
        try:
            async with asyncio.timeout(self._timeout_s):
                if len(ids) == 1:
                    record = await self._store.incident(ids[0])
                    return self._with_unrecorded({ids[0]: record} if record is not None else {}, ids)
                return self._with_unrecorded(await self._store.incidents(ids), ids)
        except (StoreUnavailable, TimeoutError) as exc:
            raise Unavailable(f"incident registry did not answer: {exc}") from None

    async def _publish_new(
        self, event: IncidentEvent, principal: Principal, given, digest, fresh: bool = False, claimed: bool = False,
        registered: bool = False,
    ) -> Accepted:
        """`claimed`: a report whose claim of its incident the store granted (it decided the first
        report: no look-up), `registered` if that claim wrote its record; `fresh`: a report naming an
        incident whose id intake minted just now."""
        report = isinstance(event, IncidentReported)
        held: list = []  # what this fact's check read and what it changes, held (Holds.hold_state)
        if not (report and (fresh or claimed)):  # a fresh report names an incident nobody can have reported
            wanted = [event.incident_id] + ([event.lead_incident_id] if isinstance(event, IncidentLinked) else [])
            reader = self._holds.open()
            try:
                records = await self._records(wanted)
                lead = records.get(event.lead_incident_id) if isinstance(event, IncidentLinked) else None
                event = guard.check(principal, event, given, records.get(event.incident_id), lead)
                if report:
                    self._holds.hold(event.incident_id)
                elif state := guard.state_held(event):
                    held = self._holds.hold_state(*state)
            finally:
                self._holds.close(reader)
        elif report:
            self._holds.hold(event.incident_id)
        written = None
        try:
            [event] = await self._sealed([event])
            [outcome] = await self._publisher.publish([event])
            if isinstance(outcome, BaseException):
                raise Unavailable(str(outcome))
            written = self._written(event, outcome, principal, digest, registered=registered)
            if fresh and written.report is None and written.change is None:
                self._store.record_soon(written)
            else:
                await self._remember([written])
        finally:
            if report or held:
                (self._holds.settle if written is not None else self._holds.release)(held or [event.incident_id])
        self._metrics.events.labels("published").inc()
        _log_accepted(written.accepted, "published")
        return written.accepted

    async def submit_batch(
        self, items: list[IncidentEvent | Rejection], principal: Principal,
        given: list[Collection[str]] | None = None, digests: list[bytes | None] | None = None,
        fresh: frozenset[uuid.UUID] = frozenset(),
    ) -> list[ItemResult]:
        """Every item gets a result; valid items are published even when others are rejected.
        Items are checked in order against the registry as the items before them leave it.
        `fresh`: event_ids intake minted just now, which need no lookup. Only the checks take a
        turn (`turn`): the look-ups, the broker's acknowledgement and the record do not."""
        began = time.monotonic()  # the look-ups and the search for earlier attempts share one ack bound
        given = given or [() for _ in items]
        digests = digests or [None for _ in items]
        valid = [(i, item) for i, item in enumerate(items) if type(item) is not Rejection]
        claims: dict[uuid.UUID, tuple] = {}  # a report claims its incident too (fresh or not: the batch named it)
        for index, event in valid:
            report = event.event_type == "IncidentReported"
            if (report or not fresh or event.event_id not in fresh) and event.event_id not in claims:
                claims[event.event_id] = (event.event_id, principal.subject, digests[index],
                                          registry.record_of(event, principal.subject) if report else None)
        # The registry is read for the incidents the other facts name: a report's incident is decided by
        # its claim (an incident already reported reads back Reported), as on the single path.
        wanted = list({e.incident_id for _, e in valid if e.event_type != "IncidentReported"}
                      | {e.lead_incident_id for _, e in valid if e.event_type == "IncidentLinked"})
        refused: list[uuid.UUID] = []  # claimed now, then refused: their claims are given up
        items = list(items)
        new: dict[uuid.UUID, IncidentEvent] = {}
        # The first item of each event_id: a later item with the same one is that event (the same
        # answer: accepted with it, or the same refusal) or, with another payload, 409. Never an
        # event of its own: it made no claim (a report's incident unclaimed, its record unwritten).
        seen: dict[uuid.UUID, int] = {}
        refusals: dict[uuid.UUID, Rejection] = {}  # by event_id: the refusal of its first item
        first: list[int] = []  # the index of each event in `new` (its first item), in `new`'s order
        replays: dict[uuid.UUID, Accepted] = {}
        records: dict[int, IncidentRecord] = {}  # the registry record of each new report, by its index
        reporting: list[uuid.UUID] = []  # the incidents whose reports this batch holds (Holds)
        changing: list[tuple[int, list]] = []  # (item, the state it holds): Holds.hold_state
        mine: collections.Counter = collections.Counter()  # all this batch holds so far
        published: list[Written] = []
        accepted: dict[int, Accepted] = {}  # by the index of the event's first item
        try:
            reader = self._holds.open()
            try:
                try:
                    async with asyncio.timeout(self._timeout_s):  # the two look-ups at once (two connections)
                        found, view = await asyncio.gather(_or_empty(self._store.claim_many, list(claims.values())),
                                                           _or_empty(self._store.incidents, wanted))
                    view = self._with_unrecorded(view, wanted)
                except (StoreUnavailable, TimeoutError) as exc:
                    raise Unavailable(f"idempotency store did not answer: {exc}") from None
                landed = await self._recovered(valid, found, principal, digests,
                                               max(0.1, self._timeout_s - (time.monotonic() - began)))
                async with self.turn():  # no await inside: the checks, then the reports held, in one step
                    for index, item in valid:
                        try:
                            if (earlier := seen.setdefault(item.event_id, index)) != index:
                                refusal = (_different_payload(item.event_id) if digests[index] != digests[earlier]
                                           else refusals.get(item.event_id))
                                if refusal is not None:
                                    items[index] = refusal.prefixed(f"events.{index}")
                                    self._metrics.rejections.labels(refusal.reason).inc()
                                continue  # its claim is the earlier item's: never given up here
                            hit = found.get(item.event_id) if found else None
                            if type(hit) is Reported:  # another event holds the incident, unless taken over
                                if (refusal := landed[item.event_id]) is not None:
                                    raise refusal
                            elif hit is not None:
                                _same_sender(hit.subject, hit.digest, principal, digests[index], item.event_id)
                                if item.event_id in replays:
                                    continue
                                result = hit if isinstance(hit, Accepted) else landed.get(item.event_id)
                                if isinstance(result, Unavailable):
                                    raise result
                                if result is not None:
                                    replays[item.event_id] = result
                                    continue
                            lead = view.get(item.lead_incident_id) if item.event_type == "IncidentLinked" else None
                            checked = guard.check(principal, item, given[index], view.get(item.incident_id), lead)
                            if checked.event_type == "IncidentReported":
                                self._holds.hold(checked.incident_id)  # 409 if another request reports it
                                reporting.append(checked.incident_id)
                                view[checked.incident_id] = records[index] = claims[item.event_id][3]  # as claimed
                            else:
                                if state := guard.state_held(checked):  # 409 if another request holds one
                                    keys = self._holds.hold_state(*state, mine=mine)  # later items: `view`
                                    mine.update(keys)
                                    changing.append((index, keys))
                                if (change := registry.change_of(checked)) is not None:
                                    view[checked.incident_id] = registry.applied(view[checked.incident_id], change)
                            new[item.event_id] = items[index] = checked
                            first.append(index)
                        except Rejection as rejection:
                            refusals[item.event_id] = rejection
                            items[index] = rejection.prefixed(f"events.{index}")
                            self._metrics.rejections.labels(rejection.reason).inc()
                            if item.event_id in claims and _claimed_now(found.get(item.event_id)):
                                refused.append(item.event_id)
                        except Unavailable as exc:  # an earlier attempt's claim that may still be in flight
                            refusals[item.event_id] = Rejection(503, "unavailable", (("(event)", str(exc)),))
                            items[index] = refusals[item.event_id].prefixed(f"events.{index}")
            finally:
                self._holds.close(reader)
            if new and not self._publisher.connected:
                raise Unavailable("not connected to the broker")
            new, erased = await self._sealed_batch(new)
            if erased:
                for index, item in valid:
                    if item.event_id in erased:
                        items[index] = erased[item.event_id].prefixed(f"events.{index}")
                first = [i for i in first if type(items[i]) is not Rejection]
            refused += [e for e in erased if e in claims and _claimed_now(found.get(e))]
            if refused:
                await self._release(refused, [claims[e][3].incident_id for e in refused if claims[e][3] is not None])
            events = list(new.values())
            outcomes = await self._publisher.publish_batch(events) if events else []
            failed: dict[uuid.UUID, BaseException] = {}
            for index, event, outcome in zip(first, events, outcomes):
                if isinstance(outcome, BaseException):
                    failed[event.event_id] = outcome
                    continue
                written = self._written(event, outcome, principal, digests[index], records.get(index),
                                        registered=index in records and event.event_id not in found)
                published.append(written)
                accepted[index] = written.accepted
            if events and not published:
                raise Unavailable(str(outcomes[0]))
            await self._remember(published)
        finally:
            reported = {w.accepted.incident_id for w in published if w.report is not None}
            self._holds.settle([i for i in reporting if i in reported])
            self._holds.release([i for i in reporting if i not in reported])
            if changing:
                self._holds.settle([k for index, keys in changing if index in accepted for k in keys])
                self._holds.release([k for index, keys in changing if index not in accepted for k in keys])
        self._metrics.events.labels("published").inc(len(published))
        results: dict[uuid.UUID, Accepted] | None = None  # by event_id: replays, and an event's later items
        out = []
        for index, item in enumerate(items):
            if type(item) is Rejection:
                out.append(ItemResult(index, rejection=item))
            elif (done := accepted.get(index)) is not None:
                out.append(ItemResult(index, accepted=done))
            elif item.event_id in failed:
                rejection = Rejection(503, "unavailable", (("(event)", str(failed[item.event_id])),))
                out.append(ItemResult(index, rejection=rejection, event_id=item.event_id, incident_id=item.incident_id))
            else:
                if results is None:
                    results = {a.event_id: a for a in accepted.values()} | replays
                out.append(ItemResult(index, accepted=results[item.event_id]))
        self._metrics.events.labels("duplicate").inc(len(replays))
        log.info("batch accepted", items=len(items), published=len(published), duplicates=len(replays),
                 rejected=sum(1 for i in items if type(i) is Rejection) + len(failed),
                 partitions=sorted({w.accepted.partition for w in published}))
        return out

    async def _sealed(self, events: list[IncidentEvent]) -> list[IncidentEvent]:
        """The events with their people sealed under their incidents' data keys (docs/security.md):
        people never reach the topic in the clear. 409 naming `people` for an erased incident's."""
        wanted = [e.incident_id for e in events if sealing.needs_sealing(e)]
        if not wanted:
            return events
        if self._keys is None:
            raise Unavailable("people: no key service to seal them with")
        try:
            async with asyncio.timeout(self._timeout_s):
                data_keys = await self._keys.keys_for_sealing(wanted)
        except (StoreUnavailable, TimeoutError) as exc:
            raise Unavailable(f"key service did not answer: {exc}") from None
        except keys.PeopleErased as exc:
            raise _erased(exc.incident_ids[0]) from None
        return [sealing.sealed(e, data_keys[e.incident_id]) if sealing.needs_sealing(e) else e for e in events]

    async def _sealed_batch(self, new: dict[uuid.UUID, IncidentEvent]):
        """`_sealed` for a batch: (the events to publish, the rejections of those about erased incidents)."""
        events = list(new.values())
        try:
            sealed = await self._sealed(events)
            return (new if sealed is events else dict(zip(new, sealed))), {}  # nothing to seal: the same dict
        except Rejection:
            pass
        erased: dict[uuid.UUID, Rejection] = {}
        kept: dict[uuid.UUID, IncidentEvent] = {}
        for event_id, event in new.items():  # some incident's people were erased: find which items
            try:
                [kept[event_id]] = await self._sealed([event])
            except Rejection as rejection:
                erased[event_id] = rejection
        return kept, erased

    def on_late_ack(self, event: IncidentEvent, metadata: RecordMetadata) -> None:
        """The broker acknowledged after we answered 503: remember it for the retry (the caller's
        subject is not known here, so the row names none: any caller's retry of it is a replay)."""
        written = self._written(event, metadata, None, None)
        task = asyncio.get_running_loop().create_task(self._remember([written]))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._confirming is not None and not self._confirming.done():  # what it finds lost is `_unrecorded`
            try:
                async with asyncio.timeout(self._timeout_s):
                    await asyncio.shield(self._confirming)
            except TimeoutError:
                self._confirming.cancel()
                log.error("stopping with records the store has not confirmed durable", count=len(self._unconfirmed),
                          event_ids=[str(w.accepted.event_id) for w in self._unconfirmed[:20]])
        if self._rerecording is not None and not self._rerecording.done():
            self._rerecording.cancel()
        if self._unrecorded:  # one last try; what it cannot write is named in the log
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._store.record_many(self._unrecorded)
                self._unrecorded.clear()
            except (StoreUnavailable, TimeoutError) as exc:
                log.error("stopping with records the store did not take", count=len(self._unrecorded),
                          event_ids=[str(w.accepted.event_id) for w in self._unrecorded[:20]], error=str(exc))

    async def _remember(self, written: list[Written]) -> None:
        if not written:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                if len(written) == 1:
                    await self._store.record(written[0])
                    self._confirm_soon(written[0])
                else:
                    await self._store.record_many(written)
        except (StoreUnavailable, TimeoutError) as exc:
            # The broker has the events, so the caller hears 2xx; only a retry could duplicate them.
            # Their records are kept and written again until the store takes them (`_rerecord`).
            log.error("idempotency store write failed", count=len(written), error=str(exc))
            self._unrecorded.extend(written)
            if self._rerecording is None or self._rerecording.done():
                self._rerecording = asyncio.get_running_loop().create_task(self._rerecord())

    def _confirm_soon(self, written: Written) -> None:
        self._unconfirmed.append(written)
        if written.report is not None:
            self._unconfirmed_reports[written.report.incident_id] = written.report
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.get_running_loop().create_task(self._confirm())

    async def _confirm(self, first_delay: float = 0.2, max_delay: float = 5.0) -> None:
        """Until the store confirms every record `record` committed (durable), or says which it lost:
        those are written again (`_unrecorded`, `_rerecord`). While the store cannot say (it is away),
        they are asked about again, backing off: a record it may hold is never written twice (a
        registry change applied again out of order would undo a later one)."""
        delay = first_delay
        while self._unconfirmed:
            waiting = list(self._unconfirmed)
            try:
                async with asyncio.timeout(self._timeout_s):
                    lost = await self._store.confirm(waiting)
            except (StoreUnavailable, TimeoutError):
                await asyncio.sleep(delay)
                delay = min(max_delay, delay * 2)
                continue
            delay = first_delay
            del self._unconfirmed[:len(waiting)]
            if lost:
                log.error("the idempotency store lost records it had committed; writing them again", count=len(lost),
                          event_ids=[str(w.accepted.event_id) for w in lost[:20]])
                self._unrecorded.extend(lost)
                if self._rerecording is None or self._rerecording.done():
                    self._rerecording = asyncio.get_running_loop().create_task(self._rerecord())
            for w in waiting:
                if w.report is not None and self._unconfirmed_reports.get(w.report.incident_id) is w.report:
                    del self._unconfirmed_reports[w.report.incident_id]

    async def _rerecord(self, first_delay: float = 0.2, max_delay: float = 5.0) -> None:
        """Write the records the store refused again, oldest first, backing off, until it takes them."""
        delay = first_delay
        while self._unrecorded:
            await asyncio.sleep(delay)
            waiting = list(self._unrecorded)
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._store.record_many(waiting)
            except (StoreUnavailable, TimeoutError):
                delay = min(max_delay, delay * 2)
                continue
            del self._unrecorded[:len(waiting)]
            log.info("idempotency store took the records it had refused", count=len(waiting))

    def _with_unrecorded(self, found: dict[uuid.UUID, IncidentRecord], ids) -> dict[uuid.UUID, IncidentRecord]:
        """The registry as the store answered, with what this process published and could not record yet
        (or recorded and the store may have lost: its reports)."""
        if self._unconfirmed_reports:
            for incident_id in ids:
                if incident_id not in found and (report := self._unconfirmed_reports.get(incident_id)) is not None:
                    found[incident_id] = report
        if not self._unrecorded:
            return found
        wanted = set(ids)
        for written in self._unrecorded:
            report, change = written.report, written.change
            if report is not None and report.incident_id in wanted:
                found.setdefault(report.incident_id, report)
            elif change is not None and change.incident_id in found:
                found[change.incident_id] = registry.applied(found[change.incident_id], change)
        return found

    def _written(self, event: IncidentEvent, metadata: RecordMetadata, principal: Principal | None,
                 digest: bytes | None, record: IncidentRecord | None = None, registered: bool = False) -> Written:
        accepted = Accepted(
            event_id=event.event_id,
            incident_id=event.incident_id,
            event_type=event.event_type,
            topic=metadata.topic,
            partition=metadata.partition,
            offset=metadata.offset,
            subject=principal.subject if principal is not None else None,
            digest=digest,
        )
        if event.event_type == "IncidentReported":
            reporter = principal.subject if principal is not None else event.source.id
            return Written(accepted, report=record or registry.record_of(event, reporter), registered=registered)
        return Written(accepted, change=registry.change_of(event))


def _holder(event: IncidentEvent, held: Reported) -> IncidentEvent:
    """The report that holds the incident, as far as looking for it on the topic goes (its key and
    its event_id)."""
    return event.model_copy(update={"event_id": held.event_id})


def _claimed_now(hit: Accepted | Pending | Reported | None) -> bool:
    """A claim this call made (its event_id was new; a report's incident may be another's): given up if refused."""
    return hit is None or type(hit) is Reported and hit.claimed


async def _or_empty(look_up, ids: list) -> dict:
    return await look_up(ids) if ids else {}


def _erased(incident_id: uuid.UUID) -> Rejection:
    return guard.conflict("people", f"the people of incident {incident_id} were erased: none can be recorded for it")


def _same_sender(subject: str | None, digest: bytes | None, principal: Principal, sent: bytes | None,
                 event_id: uuid.UUID) -> None:
    """A replay must come from the caller who sent the event, with the same payload: else 409.
    (Rows recorded before intake kept the subject, or for a late acknowledgement, name none.)"""
    if subject is not None and subject != principal.subject:
        raise guard.conflict("event_id", f"{event_id} is already the id of another caller's event: use a new event_id")
    if digest is not None and sent is not None and digest != sent:
        raise _different_payload(event_id)


def _different_payload(event_id: uuid.UUID) -> Rejection:
    return guard.conflict("event_id", f"{event_id} was already sent with a different payload: use a new event_id")


def _log_accepted(accepted: Accepted, outcome: str) -> None:
    """The canonical line of one accepted event: ids and where it is, never its content."""
    log.info("event accepted", outcome=outcome, event_id=str(accepted.event_id),
             incident_id=str(accepted.incident_id), event_type=accepted.event_type,
             topic=accepted.topic, partition=accepted.partition, offset=accepted.offset)
