"""calendar.check: who may post a calendar fact about a planned event or silence (pure)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.intake.calendar import check
from services.intake.repository import CalendarItem
from services.intake.validation import Rejection
from services.shared import events as ev
from services.shared.auth import Principal, Role
from services.shared.events import Agency
from tests.factories import WHITECHAPEL

AT = datetime(2026, 11, 20, 22, 0, tzinfo=timezone.utc)
SOURCE = ev.Source(kind=ev.SourceKind.SYSTEM, id="x")
POLICE = Principal("police-analyst-1", Role.ANALYST, Agency.POLICE)
VOLUNTARY = Principal("vol-analyst-1", Role.ANALYST, Agency.VOLUNTARY)
COUNCIL_ROOM = Principal("op-17", Role.CONTROL_ROOM, Agency.COUNCIL)
OTHER_ROOM = Principal("vol-cr-1", Role.CONTROL_ROOM, Agency.VOLUNTARY)


def cancel() -> ev.PlannedEventCancelled:
    return ev.PlannedEventCancelled(event_id=uuid.uuid4(), occurred_at=AT, recorded_at=AT, source=SOURCE,
                                    planned_event_id=uuid.uuid4())


def silence() -> ev.TensionSilenced:
    return ev.TensionSilenced(event_id=uuid.uuid4(), occurred_at=AT, recorded_at=AT, source=SOURCE,
                              silence_id=uuid.uuid4(), ward_code=WHITECHAPEL, category="noise",
                              until=AT + timedelta(hours=1), reason="works")


def refusal(call) -> tuple[int, str]:
    with pytest.raises(Rejection) as caught:
        call()
    return caught.value.status, caught.value.problems[0][0]


def test_a_new_item_is_anyones_to_register_but_a_cancellation_needs_one_registered():
    assert check(VOLUNTARY, silence(), None) is None
    assert refusal(lambda: check(POLICE, cancel(), None)) == (404, "planned_event_id")


@pytest.mark.parametrize("caller, allowed", [(POLICE, True), (COUNCIL_ROOM, True), (VOLUNTARY, False),
                                             (OTHER_ROOM, False)])
def test_a_registered_item_is_changed_by_its_agency_the_control_room_and_admins(caller, allowed):
    item = CalendarItem("planned_event", "police", "police-analyst-1")
    if allowed:
        assert check(caller, cancel(), item) is None
    else:
        assert refusal(lambda: check(caller, cancel(), item)) == (403, "planned_event_id")


def test_a_cancelled_item_stays_cancelled_and_an_id_is_of_one_kind():
    assert refusal(lambda: check(POLICE, cancel(), CalendarItem("planned_event", "police", "p", cancelled=True))) \
        == (409, "planned_event_id")
    assert refusal(lambda: check(COUNCIL_ROOM, silence(), CalendarItem("planned_event", "council", "op-17"))) \
        == (409, "silence_id")
