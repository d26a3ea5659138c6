"""Pacing, rate limits and the sinks' wire formats (the Kafka sink is tested against the broker)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest

from services.simulator.feed import ApiSink, JsonlSink, Pace, SimulateError, play, schedule
from services.simulator.generator import FeedConfig, generate
from tests.unit.simulator.conftest import FRIDAY


class ListSink:
    batch_size = 50

    def __init__(self):
        self.batches, self.closed = [], False

    def prepare(self, event):
        return event

    async def start(self):
        pass

    async def send(self, batch):
        self.batches.append((time.monotonic(), list(batch)))

    async def close(self):
        self.closed = True

    def describe(self):
        return "a list"


def _events(n: int, hours: float = 2):
    return list(generate(FeedConfig(start=FRIDAY, hours=hours, seed=9)))[:n]


async def test_a_speed_up_spreads_the_events_over_simulated_time_divided_by_it():
    events = _events(40)
    span = (events[-1].recorded_at - FRIDAY).total_seconds()
    sink = ListSink()
    played = await play(schedule(events, sink, FRIDAY, Pace(speedup=span / 0.4)), sink, progress=False)
    assert played.sent == 40 and sink.closed
    assert played.seconds >= 0.35
    assert [e for _, batch in sink.batches for e in batch] == events


async def test_a_rate_limit_holds_the_feed_to_that_many_events_a_second():
    events = _events(60)
    sink = ListSink()
    played = await play(schedule(events, sink, FRIDAY, Pace()), sink, rate=200, progress=False)
    assert played.seconds >= 59 / 200 - 0.006  # the last one is due at 59/200 s; 5 ms early is allowed
    assert played.rate < 215


async def test_as_fast_as_possible_sends_in_full_batches():
    events = _events(120)
    sink = ListSink()
    await play(schedule(events, sink, FRIDAY, Pace()), sink, progress=False)
    assert [len(b) for _, b in sink.batches] == [50, 50, 20]


async def test_jsonl_sink_writes_one_wire_event_a_line(tmp_path):
    events = _events(5)
    sink = JsonlSink(str(tmp_path / "feed.jsonl"))
    await play(schedule(events, sink, FRIDAY, Pace()), sink, progress=False)
    lines = (tmp_path / "feed.jsonl").read_text().splitlines()
    assert lines == [e.model_dump_json() for e in events]


async def test_api_sink_posts_full_events_in_a_batch_with_the_bearer_token_and_counts_rejections():
    seen = []

    def intake(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        results = [{"index": i, "status": "accepted" if i else "rejected", "error": "severity: too high"}
                   for i, _ in enumerate(body["events"])]
        return httpx.Response(200, json={"results": results})

    events = _events(3)
    sink = ApiSink("http://intake.test/", "tok-123", transport=httpx.MockTransport(intake))
    await play(schedule(events, sink, FRIDAY, Pace()), sink, progress=False)
    assert seen[0].url == "http://intake.test/v1/events:batch"
    assert seen[0].headers["authorization"] == "Bearer tok-123"
    sent = json.loads(seen[0].content)["events"]
    assert [e["event_id"] for e in sent] == [str(e.event_id) for e in events]
    assert sent[0]["incident_id"] == str(events[0].incident_id) and sent[0]["event_type"] == "IncidentReported"
    assert sink.accepted == 2 and sink.rejected == {"severity: too high": 1}


async def test_api_sink_stops_with_the_status_when_intake_refuses_the_batch():
    sink = ApiSink("http://intake.test", "bad", transport=httpx.MockTransport(
        lambda request: httpx.Response(401, json={"detail": "invalid token"})))
    with pytest.raises(SimulateError, match="answered 401.*invalid token"):
        await play(schedule(_events(2), sink, FRIDAY, Pace()), sink, progress=False)


def test_schedule_is_relative_to_the_start_and_never_negative():
    events = _events(3)
    sink = ListSink()
    dues = [due for due, _ in schedule(events, sink, events[0].recorded_at + timedelta(hours=1), Pace(speedup=60))]
    assert dues == [0.0, 0.0, 0.0]
