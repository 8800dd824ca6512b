"""Mutation fuzzing: hostile variants of good webhook bodies (issue 9).

Each mutator turns one body into a broken or stretched one: truncated, bytes flipped, invalid
UTF-8, deeply nested, huge arrays, a value of the wrong type, duplicate keys, NaN and Infinity,
enormous numbers, megabyte strings, byte-order marks, empty bodies. `mutants` draws from them
with a seeded `random.Random`, so a failing input is reproduced by its seed and index.

Pure: bytes in, bytes out. Used by the fuzz tests in `tests/reliability/` (through the
acceptance and transform cores and the HTTP route); longer runs scale them by environment
(RELIABILITY.md).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

Mutator = Callable[[bytes, random.Random], bytes]

_NUMBER = re.compile(rb"(?<=[:\[,])\s*-?\d+(\.\d+)?([eE][+-]?\d+)?")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BOMS = (b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_EMPTY_BODIES = (b"", b" ", b"\r\n\t ", b"null", b"{}", b"[]", b'""', b"0", b"[[]]", b"[{}]")
_INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\x80\x80")
_NUMBERS = (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400",
            b"1" + b"0" * 400, b"-" + b"9" * 40, b"18446744073709551616", b"1.5e308")  # fmt: skip
_WRONG_VALUES: tuple[object, ...] = (
    None, True, 0, -1, 2**63, 1.5, "", "x", "2026-13-45T25:61:61Z", [], [None], {}, {"a": {}},
)  # fmt: skip


def truncate(body: bytes, rng: random.Random) -> bytes:
    """Cut the body anywhere (a sender that died mid-write)."""
    return body[: rng.randrange(len(body))] if body else body


def flip_bytes(body: bytes, rng: random.Random) -> bytes:
    """Replace a few bytes with random ones."""
    if not body:
        return bytes([rng.randrange(256)])
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def invalid_utf8(body: bytes, rng: random.Random) -> bytes:
    """Insert bytes that are not UTF-8 (preferably inside a string)."""
    strings = list(_STRING.finditer(body))
    at = rng.choice(strings).start() + 1 if strings else rng.randrange(len(body) + 1)
    return body[:at] + rng.choice(_INVALID_UTF8) + body[at:]


def deep_nesting(body: bytes, rng: random.Random) -> bytes:
    """Wrap the body, or a value inside it, in hundreds to thousands of brackets."""
    depth = rng.choice((100, 600, 1100, 5000))
    if rng.random() < 0.5:
        return b"[" * depth + body + b"]" * depth
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    return _replace_a_value(body, nested, rng)


def huge_array(body: bytes, rng: random.Random) -> bytes:
    """Put the body in an array longer than the payload limit, or stretch an inner array."""
    filler = b",".join([b"{}"] * rng.choice((200, 1001, 20_000)))
    if rng.random() < 0.5:
        return b"[" + body + b"," + filler + b"]"
    return _replace_a_value(body, b"[" + filler + b"]", rng)


def wrong_type(body: bytes, rng: random.Random) -> bytes:
    """Parse the body and put a value of another type somewhere in it."""
    try:
        document = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return flip_bytes(body, rng)
    paths = list(_paths(document, ()))
    if not paths:
        return orjson.dumps(rng.choice(_WRONG_VALUES))
    path = rng.choice(paths)
    try:
        return orjson.dumps(_set(document, path, rng.choice(_WRONG_VALUES)))
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return flip_bytes(body, rng)


def duplicate_keys(body: bytes, rng: random.Random) -> bytes:
    """Give the first object a second copy of one of its keys, with another value."""
    try:
        document = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return body + body
    target = document[0] if isinstance(document, list) and document else document
    if not isinstance(target, dict) or not target:
        return b'{"a":1,"a":2}'
    key = rng.choice(sorted(target))
    pair = orjson.dumps(key) + b":" + orjson.dumps(rng.choice(_WRONG_VALUES))
    if rng.random() < 0.5:  # the copy first: the original (last) wins in most parsers
        start = body.index(b"{") + 1
        return body[:start] + pair + b"," + body[start:]
    end = body.rindex(b"}")  # the copy last: it wins
    return body[:end] + b"," + pair + body[end:]


def odd_number(body: bytes, rng: random.Random) -> bytes:
    """Replace a number with NaN, Infinity, or one too big or too small for a double."""
    replacement = rng.choice(_NUMBERS)
    numbers = list(_NUMBER.finditer(body))
    if not numbers:
        return _replace_a_value(body, replacement, rng)
    match = rng.choice(numbers)
    return body[: match.start()] + replacement + body[match.end() :]


def huge_string(body: bytes, rng: random.Random) -> bytes:
    """Replace a string with one of up to a megabyte (some pass the body limit, some not)."""
    size = rng.choice((64 * 1024, 900 * 1024, 1024 * 1024 + 1))
    text = rng.choice(("x", "é", "\u0000", "\\", '"', "会")) * (size // 3)
    return _replace_a_value(body, orjson.dumps(text), rng)


def byte_order_mark(body: bytes, rng: random.Random) -> bytes:
    """Prefix a byte-order mark (UTF-8, doubled, or UTF-16 with the body re-encoded)."""
    bom = rng.choice(_BOMS)
    if bom == b"\xff\xfe":
        return bom + body.decode("utf-8", "replace").encode("utf-16-le")
    if bom == b"\xfe\xff":
        return bom + body.decode("utf-8", "replace").encode("utf-16-be")
    return bom + body


def empty_body(body: bytes, rng: random.Random) -> bytes:
    """Nothing, whitespace, or JSON with no payload in it."""
    return rng.choice(_EMPTY_BODIES)


def control_characters(body: bytes, rng: random.Random) -> bytes:
    """Raw control bytes, NUL included, inside a string (invalid JSON) or escaped (valid)."""
    strings = list(_STRING.finditer(body))
    if not strings:
        return b"\x00" + body
    at = rng.choice(strings).start() + 1
    insert = rng.choice((b"\x00", b"\x01\x1f", b"\\u0000", b"\\ud800", b"\\udfff\\ud800"))
    return body[:at] + insert + body[at:]


MUTATORS: dict[str, Mutator] = {
    "truncate": truncate,
    "flip_bytes": flip_bytes,
    "invalid_utf8": invalid_utf8,
    "deep_nesting": deep_nesting,
    "huge_array": huge_array,
    "wrong_type": wrong_type,
    "duplicate_keys": duplicate_keys,
    "odd_number": odd_number,
    "huge_string": huge_string,
    "byte_order_mark": byte_order_mark,
    "empty_body": empty_body,
    "control_characters": control_characters,
}


@dataclass(frozen=True, slots=True)
class Mutant:
    """One fuzz input: which seed body, which mutators, and the bytes."""

    index: int
    seed_index: int
    mutators: tuple[str, ...]
    body: bytes


def mutate(body: bytes, rng: random.Random, *, max_stack: int = 2) -> tuple[tuple[str, ...], bytes]:
    """Apply one to `max_stack` mutators in turn; return their names and the result."""
    names = tuple(rng.choice(sorted(MUTATORS)) for _ in range(rng.randint(1, max_stack)))
    for name in names:
        body = MUTATORS[name](body, rng)
    return names, body


def mutants(seeds: Sequence[bytes], count: int, *, seed: int = 0) -> Iterator[Mutant]:
    """`count` mutants of the seed bodies, the same ones for the same `seed`."""
    if not seeds:
        raise ValueError("mutation needs at least one seed body")
    rng = random.Random(seed)
    for index in range(count):
        seed_index = rng.randrange(len(seeds))
        names, body = mutate(seeds[seed_index], rng)
        yield Mutant(index, seed_index, names, body)


def _replace_a_value(body: bytes, value: bytes, rng: random.Random) -> bytes:
    """Put `value` (JSON text) in place of one string or number of `body`."""
    spots = [*_STRING.finditer(body), *_NUMBER.finditer(body)]
    if not spots:
        return value
    match = rng.choice(spots)
    return body[: match.start()] + value + body[match.end() :]


def _paths(node: Any, prefix: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*prefix, index))


def _set(document: Any, path: tuple[Any, ...], value: object) -> Any:
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document
