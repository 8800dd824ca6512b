"""Just enough of the AMQP 1.0 type system to work on raw bytes without proton.

The hot paths of the emulator (stamping annotations onto every stored event, padding every
outgoing frame) only need to find where an encoded value ends, read a few small values and
write a few well-known types. Doing that on bytes avoids a full proton decode/encode per event.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Any

from devstack.eventhubs.errors import AmqpDecodeError

DESCRIBED = 0x00
NULL = 0x40
LIST0 = 0x45
LIST8 = 0xC0
LIST32 = 0xD0
MAP8 = 0xC1
MAP32 = 0xD1

_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_LIST32_HEADER = struct.Struct(">BII")

# Width of the payload that follows each fixed-width constructor.
_FIXED_WIDTH: dict[int, int] = {
    0x40: 0, 0x41: 0, 0x42: 0, 0x43: 0, 0x44: 0, 0x45: 0,
    0x50: 1, 0x51: 1, 0x52: 1, 0x53: 1, 0x54: 1, 0x55: 1, 0x56: 1,
    0x60: 2, 0x61: 2,
    0x70: 4, 0x71: 4, 0x72: 4, 0x73: 4, 0x74: 4,
    0x80: 8, 0x81: 8, 0x82: 8, 0x83: 8, 0x84: 8,
    0x94: 16, 0x98: 16,
}  # fmt: skip
# Constructors followed by a one-byte or four-byte size, then that many bytes.
_SIZE8 = frozenset({0xA0, 0xA1, 0xA3, 0xC0, 0xC1, 0xE0})
_SIZE32 = frozenset({0xB0, 0xB1, 0xB3, 0xD0, 0xD1, 0xF0})

# A 256-entry table: >= 0 fixed width, -1 size8, -4 size32, -9 described, None unknown.
_SKIP_TABLE: list[int | None] = [None] * 256
for _code, _width in _FIXED_WIDTH.items():
    _SKIP_TABLE[_code] = _width
for _code in _SIZE8:
    _SKIP_TABLE[_code] = -1
for _code in _SIZE32:
    _SKIP_TABLE[_code] = -4
_SKIP_TABLE[DESCRIBED] = -9


class Symbol(str):
    """An AMQP symbol (decoded), distinct from an AMQP string."""

    __slots__ = ()


class Timestamp(int):
    """An AMQP timestamp: milliseconds since the Unix epoch."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Described:
    """A described value: descriptor (usually an int code) and the value it describes."""

    descriptor: Any
    value: Any


def skip(buf: bytes | bytearray | memoryview, pos: int) -> int:
    """Return the position just after the encoded value that starts at `pos`."""
    try:
        kind = _SKIP_TABLE[buf[pos]]
        if kind is None:
            raise AmqpDecodeError(f"unknown AMQP constructor 0x{buf[pos]:02x} at {pos}")
        if kind >= 0:
            end = pos + 1 + kind
        elif kind == -1:
            end = pos + 2 + buf[pos + 1]
        elif kind == -4:
            end = pos + 5 + _U32.unpack_from(buf, pos + 1)[0]
        else:
            end = skip(buf, skip(buf, pos + 1))
    except (IndexError, struct.error) as e:
        raise AmqpDecodeError(f"truncated AMQP value at {pos}") from e
    if end > len(buf):
        raise AmqpDecodeError(f"truncated AMQP value at {pos}")
    return end


def compound_items(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int, int]:
    """For a list or map at `pos`: (element count, first element position, end position)."""
    code = buf[pos]
    if code == LIST0:
        return 0, pos + 1, pos + 1
    if code in (LIST8, MAP8):
        return buf[pos + 2], pos + 3, pos + 2 + buf[pos + 1]
    if code in (LIST32, MAP32):
        size, count = struct.unpack_from(">II", buf, pos + 1)
        return count, pos + 9, pos + 5 + size
    raise AmqpDecodeError(f"expected a list or map at {pos}, found 0x{code:02x}")


def decode(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[Any, int]:
    """Decode the value at `pos` into Python objects; return it and the end position."""
    try:
        return _decode(buf, pos)
    except (IndexError, struct.error, UnicodeDecodeError) as e:
        raise AmqpDecodeError(f"malformed AMQP value at {pos}: {e}") from e


def _decode(buf: bytes | bytearray | memoryview, pos: int) -> tuple[Any, int]:
    return _decode_payload(buf[pos], buf, pos + 1)


def _decode_payload(code: int, buf: bytes | bytearray | memoryview, p: int) -> tuple[Any, int]:
    """Decode the payload at `p` of a value whose constructor is `code`."""
    if code == DESCRIBED:
        descriptor, p = _decode(buf, p)
        value, p = _decode(buf, p)
        return Described(descriptor, value), p
    fixed = _FIXED_DECODERS.get(code)
    if fixed is not None:
        reader, width = fixed
        return reader(buf, p), p + width
    if code in (0xA0, 0xA1, 0xA3, 0xB0, 0xB1, 0xB3):
        if code & 0x10:
            size, p = _U32.unpack_from(buf, p)[0], p + 4
        else:
            size, p = buf[p], p + 1
        raw = bytes(buf[p : p + size])
        if len(raw) != size:
            raise AmqpDecodeError(f"truncated AMQP value at {p}")
        if code in (0xA0, 0xB0):
            return raw, p + size
        if code in (0xA1, 0xB1):
            return raw.decode("utf-8"), p + size
        return Symbol(raw.decode("ascii")), p + size
    if code in (LIST8, MAP8, 0xE0):
        size, count, p = buf[p], buf[p + 1], p + 2
        end = p - 1 + size
    elif code in (LIST32, MAP32, 0xF0):
        size, count = struct.unpack_from(">II", buf, p)
        end, p = p + 4 + size, p + 8
    else:
        raise AmqpDecodeError(f"unsupported AMQP constructor 0x{code:02x} at {p - 1}")
    items: list[Any] = []
    if code in (0xE0, 0xF0):
        # Array elements share one constructor, written once before the first element.
        element_code = buf[p] if count else NULL
        p += 1
        for _ in range(count):
            item, p = _decode_payload(element_code, buf, p)
            items.append(item)
        return items, end
    for _ in range(count):
        item, p = _decode(buf, p)
        items.append(item)
    if code in (LIST8, LIST32):
        return items, end
    return dict(zip(items[::2], items[1::2], strict=True)), end


def _unpacker(fmt: str) -> Any:
    unpack_from = struct.Struct(fmt).unpack_from
    return lambda buf, p: unpack_from(buf, p)[0]


_FIXED_DECODERS: dict[int, tuple[Any, int]] = {
    0x40: (lambda buf, p: None, 0),
    0x41: (lambda buf, p: True, 0),
    0x42: (lambda buf, p: False, 0),
    0x43: (lambda buf, p: 0, 0),
    0x44: (lambda buf, p: 0, 0),
    0x45: (lambda buf, p: [], 0),
    0x50: (_unpacker(">B"), 1),
    0x51: (_unpacker(">b"), 1),
    0x52: (_unpacker(">B"), 1),
    0x53: (_unpacker(">B"), 1),
    0x54: (_unpacker(">b"), 1),
    0x55: (_unpacker(">b"), 1),
    0x56: (lambda buf, p: buf[p] != 0, 1),
    0x60: (_unpacker(">H"), 2),
    0x61: (_unpacker(">h"), 2),
    0x70: (_unpacker(">I"), 4),
    0x71: (_unpacker(">i"), 4),
    0x72: (_unpacker(">f"), 4),
    0x73: (_unpacker(">I"), 4),
    0x80: (_unpacker(">Q"), 8),
    0x81: (_unpacker(">q"), 8),
    0x82: (_unpacker(">d"), 8),
    0x83: (lambda buf, p: Timestamp(_I64.unpack_from(buf, p)[0]), 8),
    0x98: (lambda buf, p: uuid.UUID(bytes=bytes(buf[p : p + 16])), 16),
}


# ------------------------------------------------------------------------------ encoding


def encode_null() -> bytes:
    return b"\x40"


def encode_bool(value: bool) -> bytes:
    return b"\x41" if value else b"\x42"


def encode_uint(value: int) -> bytes:
    return b"\x70" + _U32.pack(value)


def encode_long(value: int) -> bytes:
    return b"\x81" + _I64.pack(value)


def encode_timestamp(ms: int) -> bytes:
    return b"\x83" + _I64.pack(ms)


def encode_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) < 256:
        return b"\xa1" + bytes((len(raw),)) + raw
    return b"\xb1" + _U32.pack(len(raw)) + raw


def encode_symbol(value: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) < 256:
        return b"\xa3" + bytes((len(raw),)) + raw
    return b"\xb3" + _U32.pack(len(raw)) + raw


def encode_binary(value: bytes) -> bytes:
    if len(value) < 256:
        return b"\xa0" + bytes((len(value),)) + value
    return b"\xb0" + _U32.pack(len(value)) + value


def encode_list32(items: list[bytes]) -> bytes:
    """A list32 from already-encoded items."""
    return encode_list32_raw(b"".join(items), len(items))


def encode_list32_raw(body: bytes, count: int) -> bytes:
    """A list32 from `count` already-encoded, concatenated items."""
    return _LIST32_HEADER.pack(LIST32, len(body) + 4, count) + body


def encode_map32(pairs: bytes, pair_count: int) -> bytes:
    """A map32 from already-encoded, concatenated key/value pairs."""
    return _LIST32_HEADER.pack(MAP32, len(pairs) + 4, pair_count * 2) + pairs


def encode_described(code: int, value: bytes) -> bytes:
    """A value described by a small ulong code (the form every AMQP section uses)."""
    if code < 256:
        return b"\x00\x53" + bytes((code,)) + value
    return b"\x00\x80" + _U64.pack(code) + value
