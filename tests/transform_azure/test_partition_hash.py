"""State shards follow Event Hubs partitions: the SDK's hash, and one shard per batch."""

from __future__ import annotations

import random
import string

import pytest
from azure.eventhub._buffered_producer._partition_resolver import (
    PartitionResolver,
    generate_hash_code,
)

from adapters.entity import shard_of
from adapters.partition_hash import partition_index, partition_key_hash

ALPHABET = string.printable + "üé会话🎧\u0000\uffff"


def test_the_hash_is_the_sdks_for_any_key() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        key = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 50)))
        assert partition_key_hash(key) == generate_hash_code(key), key  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("partitions", [1, 2, 4, 32])
def test_partition_index_is_where_the_sdk_puts_a_key(partitions: int) -> None:
    resolver = PartitionResolver([str(n) for n in range(partitions)])  # type: ignore[no-untyped-call]
    for n in range(2000):
        key = f"conversation-{n}"
        where = resolver.get_partition_id_by_partition_key(key)  # type: ignore[no-untyped-call]
        assert partition_index(key, partitions) == int(where)


@pytest.mark.parametrize("partitions", [4, 8, 32])
def test_one_partition_is_one_shard_when_shards_divide_partitions(partitions: int) -> None:
    by_partition: dict[int, set[str]] = {}
    for n in range(3000):
        key = f"{n:08x}-4c1e-9a7d-{n * 7919:012x}"
        by_partition.setdefault(partition_index(key, partitions), set()).add(shard_of(key, 4))
    assert all(len(shards) == 1 for shards in by_partition.values())
