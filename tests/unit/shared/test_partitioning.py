"""The batch partitioner must put every key exactly where aiokafka's default partitioner does."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference
from hypothesis import given
from hypothesis import strategies as st

from services.shared.kafka import murmur2, murmur2_many, partition_for, partitions_for


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


@given(st.lists(st.binary(max_size=40), max_size=60), st.integers(min_value=0, max_value=3))
def test_murmur2_of_many_keys_at_once_equals_one_by_one(keys, repeat):
    keys = keys + keys[:repeat] + [b"x" * len(k) for k in keys[:repeat]]  # several keys of one length
    assert murmur2_many(keys) == [reference(k) for k in keys]


@given(st.lists(st.uuids(), max_size=50), st.integers(min_value=1, max_value=64))
def test_a_batch_of_incident_keys_lands_where_aiokafka_puts_each(incident_ids, count):
    keys = [str(i).encode() for i in incident_ids]
    partitions = list(range(count))
    assert partitions_for(keys, partitions) == [DefaultPartitioner()(k, partitions, partitions) for k in keys]
