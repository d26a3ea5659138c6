"""The tension calendar's facts at intake: planned events (registered, updated, cancelled) and
silences, to the calendar topic.

Each fact is claimed by its event_id before it is published, in the idempotency store as an
incident fact is (its row's incident_id holds the fact's key: its planned_event_id or
silence_id), so a replay by its sender with the same payload returns the first answer without
publishing again, and the same event_id from another caller, or with another payload, is 409
naming event_id. Each planned event and silence is its registering agency's
(intake.calendar_items, made when its first registration is checked): only that agency, the
control room and admins update or cancel it (403 naming planned_event_id or silence_id); a
cancellation of one intake never registered is 404, of one cancelled 409, as is a registration
of a cancelled one (register a new one). Before, any analyst could cancel or rewrite another
agency's planned event, and a replay published again (red-team probe, 2026-12-04).

Failure semantics, as an incident fact's (service.py): only the broker's acknowledgement makes a
fact accepted; its row is written before the caller hears 202. A fact refused gives its claim up.
A broker that does not confirm in time is 503, the claim kept: a retry within twice the
acknowledgement bound is 503 (the first attempt may still land), after it the claim is taken over
and the fact published (a second copy, same event_id, if the first did land late: the calendar's
reader folds a registration, a cancellation or a silence again to the same state). A row the store
did not take after the acknowledgement is logged; the caller still hears 202.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from services.intake import permissions
from services.intake.guard import conflict
from services.intake.ports import IdempotencyStorePort
from services.intake.publisher import BrokerUnavailable, Publisher
from services.intake.repository import Accepted, CalendarItem, Pending, StoreUnavailable
from services.intake.service import CLAIM_BOUNDS, Unavailable, _same_sender
from services.intake.validation import Rejection
from services.shared.auth import Principal
from services.shared.events import Event
from services.shared.logging import get_logger

log = get_logger("intake.calendar")

# event type -> (the kind of item it is about, whether it registers it)
ITEMS: dict[str, tuple[str, bool]] = {
    "PlannedEventRegistered": ("planned_event", True),
    "PlannedEventCancelled": ("planned_event", False),
    "TensionSilenced": ("silence", True),
}


def check(principal: Principal, event: Event, item: CalendarItem | None) -> None:
    """Whether this caller may post this fact about this item (None: intake never registered it). Pure."""
    key_field = type(event).topic_key_field
    item_id = getattr(event, key_field)
    kind, registers = ITEMS[event.event_type]
    name = kind.replace("_", " ")
    if item is None:
        if not registers:
            raise Rejection(404, "not_found", ((key_field, f"no such {name}"),))
        return
    if item.kind != kind:
        raise conflict(key_field, f"{item_id} is a {item.kind.replace('_', ' ')}'s id, not a {name}'s")
    if not permissions.may_change_calendar_item(principal, item.agency):
        raise Rejection(403, "forbidden", ((key_field, f"this {name} is {item.agency}'s: only that agency, the "
                                                       "control room and admins may change or cancel it"),))
    if item.cancelled:
        raise conflict(key_field, f"{name} {item_id} was cancelled: register a new one")


class CalendarIntake:
    def __init__(self, publisher: Publisher, store: IdempotencyStorePort, topic: str, timeout_s: float) -> None:
        self._publisher, self._store, self._topic, self._timeout_s = publisher, store, topic, timeout_s

    async def submit(self, event: Event, principal: Principal, digest: bytes) -> Accepted:
        """The fact's first answer if this caller sent it before with this payload, else checked,
        published to the calendar topic and recorded."""
        key_field = type(event).topic_key_field
        item_id: uuid.UUID = getattr(event, key_field)
        found = await self._call(self._store.claim(event.event_id, principal.subject, digest))
        if isinstance(found, Accepted):
            _same_sender(found.subject, found.digest, principal, digest, event.event_id)
            return found
        if isinstance(found, Pending):
            _same_sender(found.subject, found.digest, principal, digest, event.event_id)
            over = datetime.now(timezone.utc) - found.since > timedelta(seconds=CLAIM_BOUNDS * self._timeout_s)
            if not (over and await self._call(self._store.take_over(found))):
                raise Unavailable(f"event {event.event_id} is being published by another request; "
                                          "retry shortly")
        try:
            kind, registers = ITEMS[event.event_type]
            item = await self._call(self._store.claim_calendar_item(item_id, kind, principal.agency.value,
                                                                     principal.subject) if registers
                                    else self._store.calendar_item(item_id))
            check(principal, event, item)
        except Rejection:
            await self._release(event.event_id)
            raise
        try:
            metadata = await self._publisher.publish_to(self._topic, event)
        except BrokerUnavailable as exc:
            raise Unavailable(str(exc)) from None
        accepted = Accepted(event.event_id, item_id, event.event_type, metadata.topic, metadata.partition,
                            metadata.offset, principal.subject, digest)
        try:
            await self._call(self._store.record_calendar(
                accepted, cancelled=item_id if event.event_type == "PlannedEventCancelled" else None))
        except Unavailable as exc:  # on the topic: the caller hears 202; a retry may publish it again
            log.error("calendar fact not recorded", event_id=str(event.event_id), error=str(exc))
        return accepted

    async def _call(self, awaitable):
        try:
            async with asyncio.timeout(self._timeout_s):
                return await awaitable
        except (StoreUnavailable, TimeoutError) as exc:
            raise Unavailable(f"idempotency store did not answer: {exc}") from None

    async def _release(self, event_id: uuid.UUID) -> None:
        try:
            await self._store.release([event_id])
        except StoreUnavailable as exc:
            log.warning("could not release a calendar claim", error=str(exc))

