import uuid
from datetime import datetime, timezone

import pytest

from services.query.pagination import BadCursor, Cursor, page

AT = datetime(2026, 11, 20, 21, 30, tzinfo=timezone.utc)


def test_a_cursor_survives_its_round_trip():
    cursor = Cursor(AT, uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["", "nonsense", "e30", "eyJ2IjoyfQ", "W10"])
def test_a_cursor_not_given_out_by_the_api_is_refused_naming_the_field(text):
    with pytest.raises(BadCursor, match="^cursor: "):
        Cursor.decode(text)


def test_a_page_of_limit_plus_one_rows_has_a_cursor_on_its_last_row():
    rows = [{"occurred_at": AT, "incident_id": uuid.UUID(int=i)} for i in range(4)]
    items, cursor = page(rows, 3)
    assert items == rows[:3]
    assert Cursor.decode(cursor) == Cursor(AT, uuid.UUID(int=2))


def test_the_last_page_has_no_cursor():
    rows = [{"occurred_at": AT, "incident_id": uuid.UUID(int=i)} for i in range(3)]
    assert page(rows, 3) == (rows, None)
