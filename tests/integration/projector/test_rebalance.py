"""Two projector instances in one group: partitions move between them while batches are in
flight, and the store is still the log applied once."""

from __future__ import annotations


import pytest

from tests.integration.projector.checks import assert_store_is_the_fold, caught_up, end_offsets
from tests.projector_load import stream
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_instances_joining_and_leaving_mid_load_move_partitions_without_a_crash_or_a_double(world, running):
    events = stream(24_000, seed=31)
    await world.publish(*events)
    small = world.settings.model_copy(update={"projector_batch_max_records": 200})  # a batch is nearly always in flight
    first = running(small)
    for round_ in range(6):  # each join and each leave revokes partitions from `first` mid-write
        await wait_until(lambda n=1_000 * (round_ + 1): _applied(world, n), timeout=60, what="applying")
        other = running(small)
        await wait_until(lambda: bool(other.consumer and other.consumer.assignment()), timeout=60,
                         what="the joining instance given partitions")
        other.stop()
        await wait_until(lambda: not other.running, timeout=30, what="the other instance leaving")
        assert first.running, f"the first instance stopped when partitions moved (round {round_ + 1})"
    second = running(small)
    await wait_until(lambda: bool(second.consumer and second.consumer.assignment()), timeout=60,
                     what="the second instance given partitions")
    ends = await end_offsets(world.settings, [world.catalog.name("incidents")])
    await wait_until(lambda: caught_up(world.dsn, world.settings.projector_consumer_group, ends), timeout=120,
                     interval=0.3, what="both instances caught up")
    assert first.running and second.running, "an instance stopped when partitions moved"
    assert not first.consumer.assignment() & second.consumer.assignment()
    await assert_store_is_the_fold(world.dsn, events)


async def _applied(world, n: int) -> bool:
    return (await world.fetchval("select count(*) from incident_events")) >= n
