import uuid
from datetime import date, datetime, timedelta, timezone

from services.query.tension_return import ward_return, week_bounds, weekly_return

AT = datetime(2026, 11, 17, 12, tzinfo=timezone.utc)


def change(ward, new, minutes, score=2.0, contributors=()):
    return {"event_id": uuid.uuid4(), "ward_code": ward, "new_level": new, "occurred_at": AT + timedelta(minutes=minutes),
            "score": score, "top_contributors": list(contributors)}


def test_the_week_runs_monday_to_monday():
    assert week_bounds(date(2026, 11, 19)) == (date(2026, 11, 16), date(2026, 11, 23))
    assert week_bounds(date(2026, 11, 16)) == (date(2026, 11, 16), date(2026, 11, 23))


def test_a_ward_without_changes_keeps_its_level_and_is_steady():
    row = ward_return("W1", "One", "elevated", [])
    assert (row["level"], row["trend"], row["changes"], row["peak_score"]) == ("elevated", "steady", 0, None)


def test_the_trend_compares_the_end_of_the_week_with_its_start():
    rising = ward_return("W1", "One", "normal", [change("W1", "high", 1), change("W1", "elevated", 2)])
    falling = ward_return("W1", "One", "high", [change("W1", "normal", 1)])
    assert (rising["level"], rising["trend"], rising["highest_level"]) == ("elevated", "rising", "high")
    assert falling["trend"] == "falling"


def test_top_indicators_add_up_the_contributors_of_the_week():
    c = [change("W1", "elevated", 1, contributors=[{"category": "hate_incident", "weighted": 2, "count": 1},
                                                   {"category": "noise", "weighted": 0.5, "count": 3}]),
         change("W1", "high", 2, score=4, contributors=[{"category": "hate_incident", "weighted": 3, "count": 2},
                                                        {"category": "violence", "weighted": 1, "count": 1}])]
    row = ward_return("W1", "One", "normal", c)
    assert [i["category"] for i in row["top_indicators"]] == ["hate_incident", "violence", "noise"]
    assert row["top_indicators"][0] == {"category": "hate_incident", "weighted": 5.0, "count": 3}
    assert row["peak_score"] == 4.0


def test_every_ward_is_in_the_return_and_changes_are_taken_in_event_time():
    rows = weekly_return({"W1": "One", "W2": "Two"}, {"W2": "high"},
                         [change("W1", "normal", 5), change("W1", "critical", 1)])
    assert [r["ward_code"] for r in rows] == ["W1", "W2"]
    assert rows[0]["level"] == "normal" and rows[1]["level"] == "high"
