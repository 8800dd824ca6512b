"""The partition Event Hubs places a partition key in, so state shards line up with partitions.

The service hashes the key's UTF-8 bytes with Bob Jenkins' lookup3 (`hashlittle2`, both seeds 0),
folds `c ^ b` to a signed 16-bit value, and takes the remainder by the partition count with the
sign of the hash (C# `%`), then its absolute value. Microsoft's .NET and Java SDKs carry this as
a port of the service's resolver; the JavaScript SDK's `mapPartitionKeyToId` computes the same,
and the tests check these functions against it. (The Python SDK's buffered-producer resolver
hashes code points and uses Python's `%`: it agrees for ASCII keys with a non-negative hash
only.) The local emulator places keys with this module.

With the shard of a conversation = the same formula over the shard count, and a shard count that
divides the partition count, every conversation of one Event Hubs batch falls in one shard, so
the batch's state is saved in one transaction. Correctness never depends on it: the shard is a
pure function of the id, whatever partition the event actually came from.
"""

from __future__ import annotations

from functools import lru_cache

_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = ((a - c) & _MASK) ^ _rot(c, 4)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 6)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 8)
    b = (b + a) & _MASK
    a = ((a - c) & _MASK) ^ _rot(c, 16)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 19)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c = ((c ^ b) - _rot(b, 14)) & _MASK
    a = ((a ^ c) - _rot(c, 11)) & _MASK
    b = ((b ^ a) - _rot(a, 25)) & _MASK
    c = ((c ^ b) - _rot(b, 16)) & _MASK
    a = ((a ^ c) - _rot(c, 4)) & _MASK
    b = ((b ^ a) - _rot(a, 14)) & _MASK
    c = ((c ^ b) - _rot(b, 24)) & _MASK
    return a, b, c


def _word(data: bytes, start: int) -> int:
    """Up to four bytes from `start`, little-endian (a short tail is zero-extended)."""
    return int.from_bytes(data[start : start + 4], "little")


@lru_cache(maxsize=65_536)
def partition_key_hash(key: str) -> int:
    """The service's signed 16-bit hash code of a partition key (0 for an empty key)."""
    data = key.encode("utf-8")
    if not data:
        return 0  # lookup3 returns its initial state unmixed: c ^ b == 0
    a = b = c = (0xDEADBEEF + len(data)) & _MASK
    position, remaining = 0, len(data)
    while remaining > 12:
        a = (a + _word(data, position)) & _MASK
        b = (b + _word(data, position + 4)) & _MASK
        c = (c + _word(data, position + 8)) & _MASK
        a, b, c = _mix(a, b, c)
        position += 12
        remaining -= 12
    tail = data[: position + remaining]
    a = (a + _word(tail, position)) & _MASK
    b = (b + _word(tail, position + 4)) & _MASK
    c = (c + _word(tail, position + 8)) & _MASK
    a, b, c = _final(a, b, c)
    folded = (c ^ b) & 0xFFFF
    return folded - 0x10000 if folded & 0x8000 else folded


def partition_index(key: str, partitions: int) -> int:
    """The partition (0-based) Event Hubs places `key` in among `partitions`.

    `abs(hash % n)` with C#'s `%` (the remainder takes the sign of the hash) is `abs(hash) % n`
    in Python; Python's own `%` of a negative hash would pick another partition.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return abs(partition_key_hash(key)) % partitions
