"""The Event Hubs partition-key hash, so state shards line up with Event Hubs partitions.

This is the hash the azure-eventhub SDK uses to place a partition key (Bob Jenkins' lookup3
`hashlittle2` over the key's code points, folded to a signed 16-bit value; the local emulator
uses it too). With the shard of a conversation = hash mod shards, and a shard count that
divides the partition count, every conversation of one Event Hubs batch falls in one shard,
so the batch's state is saved in one transaction. Correctness never depends on it: the shard
is a pure function of the id, whatever partition the event actually came from.
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


def _word(units: list[int], start: int) -> int:
    # Code points above 255 are added shifted all the same, as the SDK does.
    return sum(unit << (8 * shift) for shift, unit in enumerate(units[start : start + 4]))


@lru_cache(maxsize=65_536)
def partition_key_hash(key: str) -> int:
    """The SDK's signed 16-bit hash code of a partition key (0 for an empty key)."""
    if not key:
        return 0
    units = [ord(ch) for ch in key]
    a = b = c = (0xDEADBEEF + len(units)) & _MASK
    position, remaining = 0, len(units)
    while remaining > 12:
        a = (a + _word(units, position)) & _MASK
        b = (b + _word(units, position + 4)) & _MASK
        c = (c + _word(units, position + 8)) & _MASK
        a, b, c = _mix(a, b, c)
        position += 12
        remaining -= 12
    tail = units[: position + remaining]
    a = (a + _word(tail, position)) & _MASK
    b = (b + _word(tail, position + 4)) & _MASK
    c = (c + _word(tail, position + 8)) & _MASK
    a, b, c = _final(a, b, c)
    folded = (c ^ b) & 0xFFFF
    return folded - 0x10000 if folded & 0x8000 else folded


def partition_index(key: str, partitions: int) -> int:
    """The partition (0-based) the SDK places `key` in among `partitions`."""
    return abs(partition_key_hash(key) % partitions)
