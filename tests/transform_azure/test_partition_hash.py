"""Partition placement is the service's: checked against Microsoft's JavaScript SDK, run by node.

The JS SDK's `mapPartitionKeyToId` is the port of the service's resolver (its own tests use
outputs of the service's C# code); `tests/js/partition_placement.mjs` runs the pinned copy on
the keys below. State shards follow partitions, so one batch is one shard.
"""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
import uuid
from pathlib import Path

import pytest
from azure.eventhub._buffered_producer._partition_resolver import generate_hash_code

from adapters.entity import shard_of
from adapters.partition_hash import partition_index, partition_key_hash

ROOT = Path(__file__).resolve().parents[2]
PLACEMENT_SCRIPT = ROOT / "tests" / "js" / "partition_placement.mjs"
PARTITION_COUNTS = (1, 2, 3, 4, 8, 32)
NON_ASCII = "éßñüç中文字会话😀🎧\u0000\u007f\u0080\u00ff\u0100\u07ff\u0800\uffff\U0010ffff"


def _keys() -> dict[str, list[str]]:
    rng = random.Random(20260611)
    ascii_keys = [f"conversation-{n}" for n in range(50)] + [
        "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 64))) for _ in range(200)
    ]
    # Byte lengths around lookup3's 12-byte blocks (every tail length, whole blocks, 2 blocks).
    ascii_keys += ["x" * n for n in range(1, 26)]
    non_ascii = [
        "".join(rng.choice(NON_ASCII + string.ascii_letters) for _ in range(rng.randint(1, 40)))
        for _ in range(200)
    ] + ["é", "中", "😀", "é中😀", "a/b#c?d", "\u0000"]
    uuids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200)]
    return {"uuid": uuids, "ascii": ascii_keys, "non-ascii": non_ascii, "empty": [""]}


def _js_placements(keys: list[str]) -> tuple[list[int], dict[int, list[int]]]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@azure" / "event-hubs").exists():
        pytest.fail("node and the pinned npm packages are needed: run `make setup`")
    request = json.dumps({"keys": keys, "partitions": list(PARTITION_COUNTS)})
    done = subprocess.run(
        [node, str(PLACEMENT_SCRIPT)],
        input=request.encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    answer = json.loads(done.stdout)
    placements = {int(count): places for count, places in answer["placements"].items()}
    return answer["hashes"], placements


@pytest.fixture(scope="module")
def js_vectors() -> dict[str, tuple[list[str], list[int], dict[int, list[int]]]]:
    vectors = {}
    for kind, keys in _keys().items():
        hashes, placements = _js_placements(keys)
        vectors[kind] = (keys, hashes, placements)
    return vectors


@pytest.mark.parametrize("kind", ["uuid", "ascii", "non-ascii", "empty"])
def test_keys_land_where_the_js_sdk_places_them(
    js_vectors: dict[str, tuple[list[str], list[int], dict[int, list[int]]]], kind: str
) -> None:
    keys, hashes, placements = js_vectors[kind]
    assert [partition_key_hash(key) for key in keys] == hashes
    for count in PARTITION_COUNTS:
        assert [partition_index(key, count) for key in keys] == placements[count], count


def test_the_vectors_cover_negative_hashes_and_every_partition(
    js_vectors: dict[str, tuple[list[str], list[int], dict[int, list[int]]]],
) -> None:
    _, hashes, placements = js_vectors["uuid"]
    assert sum(h < 0 for h in hashes) > 50  # the case Python's `%` would get wrong
    assert set(placements[32]) == set(range(32))


def test_the_python_sdk_resolver_differs_for_negative_hashes() -> None:
    """Why the Python SDK's buffered resolver is no reference: same hash over ASCII, other `%`."""
    keys = [f"conversation-{n}" for n in range(200)]
    sdk_hash = {key: generate_hash_code(key) for key in keys}  # type: ignore[no-untyped-call]
    assert all(partition_key_hash(key) == sdk_hash[key] for key in keys)
    differing = [key for key in keys if partition_index(key, 4) != abs(sdk_hash[key] % 4)]
    assert differing
    assert all(sdk_hash[key] < 0 for key in differing)


def test_partition_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        partition_index("key", 0)


@pytest.mark.parametrize("partitions", [4, 8, 32])
def test_one_partition_is_one_shard_when_shards_divide_partitions(partitions: int) -> None:
    by_partition: dict[int, set[str]] = {}
    for n in range(3000):
        key = str(uuid.UUID(int=n * 0x9E3779B97F4A7C15 % 2**128, version=4))
        by_partition.setdefault(partition_index(key, partitions), set()).add(shard_of(key, 4))
    assert all(len(shards) == 1 for shards in by_partition.values())
    assert len(by_partition) == partitions
