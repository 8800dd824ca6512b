"""Which partition a partition key lands in: the same answer as the azure-eventhub SDK.

The SDK's buffered producer resolves keys client-side with Bob Jenkins' lookup3 hash
(`hashlittle2` over the key's code points, folded to a signed 16-bit value). The emulator uses
the same function for keys it receives, so a key lands in the same partition whether the
client or the emulator resolved it. (The service itself takes `abs` of a C#-style remainder,
which differs from Python's `%` for negative hashes; matching the SDK keeps local runs
self-consistent.)
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF


def _rotate(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _MASK ^ _rotate(c, 4)
    c = (c + b) & _MASK
    b = (b - a) & _MASK ^ _rotate(a, 6)
    a = (a + c) & _MASK
    c = (c - b) & _MASK ^ _rotate(b, 8)
    b = (b + a) & _MASK
    a = (a - c) & _MASK ^ _rotate(c, 16)
    c = (c + b) & _MASK
    b = (b - a) & _MASK ^ _rotate(a, 19)
    a = (a + c) & _MASK
    c = (c - b) & _MASK ^ _rotate(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c = (c ^ b) - _rotate(b, 14) & _MASK
    a = (a ^ c) - _rotate(c, 11) & _MASK
    b = (b ^ a) - _rotate(a, 25) & _MASK
    c = (c ^ b) - _rotate(b, 16) & _MASK
    a = (a ^ c) - _rotate(c, 4) & _MASK
    b = (b ^ a) - _rotate(a, 14) & _MASK
    c = (c ^ b) - _rotate(b, 24) & _MASK
    return a, b, c


def _word(units: list[int], start: int, end: int) -> int:
    """Little-endian sum of the units in [start, min(start + 4, end)).

    Units are code points, so they may exceed a byte; the SDK adds them shifted all the same.
    """
    total = 0
    for shift, unit in enumerate(units[start : min(start + 4, end)]):
        total += unit << (8 * shift)
    return total


def lookup3_pair(key: str) -> tuple[int, int]:
    """Jenkins lookup3 `hashlittle2` (both seeds 0) over the key's code points: (c, b)."""
    units = [ord(ch) for ch in key]
    length = len(units)
    a = b = c = (0xDEADBEEF + length) & _MASK
    pos = 0
    remaining = length
    while remaining > 12:
        a = (a + _word(units, pos, length)) & _MASK
        b = (b + _word(units, pos + 4, length)) & _MASK
        c = (c + _word(units, pos + 8, length)) & _MASK
        a, b, c = _mix(a, b, c)
        pos += 12
        remaining -= 12
    if remaining == 0:
        return c, b
    # The tail (1..12 units) is added word by word, then mixed by `final`.
    a = (a + _word(units, pos, length)) & _MASK
    b = (b + _word(units, pos + 4, length)) & _MASK
    c = (c + _word(units, pos + 8, length)) & _MASK
    a, b, c = _final(a, b, c)
    return c, b


def partition_hash(key: str) -> int:
    """The SDK's signed 16-bit hash code of a partition key (0 for an empty key)."""
    if not key:
        return 0
    c, b = lookup3_pair(key)
    folded = (c ^ b) & 0xFFFF
    return folded - 0x10000 if folded & 0x8000 else folded


def partition_for_key(key: str, partition_count: int) -> int:
    """Index of the partition (0-based) that `key` maps to among `partition_count` partitions."""
    return abs(partition_hash(key) % partition_count)
