"""The batch partitioner must put every key exactly where aiokafka's default partitioner does."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference
from hypothesis import given
from hypothesis import strategies as st

from services.shared.kafka import murmur2, partition_for


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafkas_for_any_bytes(data):
    assert murmur2(data) == reference(data)


@given(st.uuids(), st.integers(min_value=1, max_value=64))
def test_an_incident_key_lands_on_the_partition_aiokafka_picks(incident_id: uuid.UUID, count: int):
    key = str(incident_id).encode()
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_known_values_from_the_java_client():
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829, b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
             b"abc": 479470107}
    for data, signed in cases.items():
        assert murmur2(data) == signed & 0xFFFFFFFF
