"""Pure parts of ingest/producer.py (the producer itself runs against real brokers in
test_ops.py and test_unavailable.py)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from ingest.producer import KeyPartitioner

SHARED = KeyPartitioner(max_keys=8)  # small, so examples also run through evictions


@given(
    keys=st.lists(st.binary(max_size=64), min_size=1, max_size=20), partitions=st.integers(1, 64)
)
def test_key_partitioner_picks_the_default_partitioners_partition(
    keys: list[bytes], partitions: int
) -> None:
    all_partitions = list(range(partitions))
    for key in keys + keys:  # the second time from memory (or after an eviction)
        expected = DefaultPartitioner()(key, all_partitions, all_partitions)
        assert SHARED(key, all_partitions, all_partitions) == expected
