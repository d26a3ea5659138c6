"""The feed: deterministic for a seed, in recorded order, each incident with a plausible life."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import timedelta

import jsonschema
import pytest

from services.shared import events as ev
from services.shared.schemas import SCHEMAS_DIR
from services.shared.wards import wards
from services.simulator.generator import FeedConfig, generate, poisson
from tests.unit.simulator.conftest import FRIDAY


def _wire(config: FeedConfig) -> list[str]:
    return [e.model_dump_json() for e in generate(config)]


def test_the_same_seed_gives_byte_identical_events_ids_included():
    config = FeedConfig(start=FRIDAY, hours=6, seed=42, scenarios=(("poplar-fire", None),))
    assert _wire(config) == _wire(config)


def test_different_seeds_give_different_events():
    first = _wire(FeedConfig(start=FRIDAY, hours=6, seed=1))
    second = _wire(FeedConfig(start=FRIDAY, hours=6, seed=2))
    assert first and second and first != second
    ids = lambda lines: {json.loads(line)["event_id"] for line in lines}  # noqa: E731
    assert not ids(first) & ids(second)


def test_an_hour_tells_the_same_story_whatever_the_length_of_the_period():
    short = [e for e in generate(FeedConfig(start=FRIDAY, hours=2, seed=3))]
    long = [e for e in generate(FeedConfig(start=FRIDAY, hours=10, seed=3))]
    first_hour = lambda events: [e for e in events if e.incident_id in {  # noqa: E731
        r.incident_id for r in events if isinstance(r, ev.IncidentReported) and r.occurred_at < FRIDAY + timedelta(hours=1)}]
    assert first_hour(short) == first_hour(long)


def test_events_come_out_in_recorded_order(day):
    assert [e.recorded_at for e in day] == sorted(e.recorded_at for e in day)


def test_every_incident_starts_with_its_report_and_its_status_never_goes_back(day):
    by_incident = defaultdict(list)
    for event in day:
        by_incident[event.incident_id].append(event)
    for events in by_incident.values():
        assert isinstance(events[0], ev.IncidentReported)
        assert not any(isinstance(e, ev.IncidentReported) for e in events[1:])
        ranks = [e.status.rank for e in events if isinstance(e, ev.IncidentStatusChanged)]
        assert ranks == sorted(ranks)
        assert all(e.classification == events[0].classification for e in events)


def test_reports_are_followed_by_acknowledgement_dispatch_arrival_and_resolution(day):
    types = {e.event_type for e in day}
    assert {"IncidentAcknowledged", "ResponderDispatched", "ResponderArrived", "IncidentStatusChanged",
            "IncidentLinked", "NoteAdded"} <= types
    statuses = {e.status for e in day if isinstance(e, ev.IncidentStatusChanged)}
    assert {ev.IncidentStatus.DISPATCHED, ev.IncidentStatus.ON_SCENE, ev.IncidentStatus.RESOLVED,
            ev.IncidentStatus.CLOSED, ev.IncidentStatus.UNFOUNDED} <= statuses


def test_some_reports_arrive_late(day):
    delays = [e.recorded_at - e.occurred_at for e in day if isinstance(e, ev.IncidentReported)]
    late = [d for d in delays if d >= timedelta(minutes=15)]
    assert late and len(late) < len(delays) / 5
    assert max(late) <= timedelta(hours=6)


def test_duplicates_come_from_other_sources_close_in_space_and_time_and_are_linked(day):
    reports = {e.incident_id: e for e in day if isinstance(e, ev.IncidentReported)}
    links = [e for e in day if isinstance(e, ev.IncidentLinked)]
    assert len(links) >= 10
    for link in links:
        dup, lead = reports[link.incident_id], reports[link.lead_incident_id]
        assert dup.category == lead.category and dup.location.ward_code == lead.location.ward_code
        assert abs(dup.occurred_at - lead.occurred_at) <= timedelta(minutes=3)
        assert math.dist((dup.location.lat, dup.location.lon), (lead.location.lat, lead.location.lon)) < 0.002


def test_the_mix_covers_every_ward_and_every_reporting_source(day):
    reports = [e for e in day if isinstance(e, ev.IncidentReported)]
    assert {r.location.ward_code for r in reports} == set(wards())
    assert {r.source.kind for r in reports} >= set(ev.SourceKind) - {ev.SourceKind.SYSTEM}
    assert len({r.category for r in reports}) >= 15


def test_sensitive_categories_stay_official_sensitive_through_their_life(day):
    sensitive = {e.incident_id for e in day if isinstance(e, ev.IncidentReported)
                 and e.category in ev.SENSITIVE_CATEGORIES}
    assert sensitive
    assert all(e.classification is ev.Classification.OFFICIAL_SENSITIVE for e in day if e.incident_id in sensitive)


def test_every_event_type_validates_against_its_committed_json_schema(day):
    validators = {}
    sample = day[:: max(1, len(day) // 400)] + [e for e in day if e.event_type in ("MajorIncidentDeclared",
                                                                                   "IncidentUpdated")]
    for event in sample:
        if (event.event_type, event.schema_version) not in validators:
            schema = json.loads((SCHEMAS_DIR / f"{event.event_type}.v{event.schema_version}.json").read_text())
            validators[event.event_type, event.schema_version] = jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.FormatChecker())
        validators[event.event_type, event.schema_version].validate(json.loads(event.model_dump_json()))
    assert len(validators) >= 8


def test_every_event_survives_a_round_trip_through_the_codec(day):
    from services.shared.codec import decode, encode

    for event in day:
        encoded = encode(event)
        assert encoded.key == str(event.incident_id).encode()
        assert decode(encoded.value) == event


@pytest.mark.parametrize("field, value, message", [("hours", 0, "hours"), ("intensity", -1, "intensity")])
def test_a_bad_feed_setting_is_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        FeedConfig(start=FRIDAY, **{field: value})


def test_a_start_without_a_time_zone_is_refused():
    with pytest.raises(ValueError, match="start"):
        FeedConfig(start=FRIDAY.replace(tzinfo=None))


def test_poisson_draws_average_their_mean():
    import random

    rng = random.Random(1)
    draws = [poisson(rng, 2.5) for _ in range(20_000)]
    assert sum(draws) / len(draws) == pytest.approx(2.5, rel=0.03)
    assert poisson(rng, 0) == 0
