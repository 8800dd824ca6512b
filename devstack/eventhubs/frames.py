"""Byte-level work on the AMQP frame streams between proton and a client.

Outbound (`OutboundFramePadder`): the azure-eventhub SDK decodes performatives by field position
and fails with `list index out of range` when trailing empty fields are omitted, which AMQP
allows and proton does. Every outgoing performative, and the composite values nested in it
(source, target, error, delivery states), is re-encoded with its full field count.

Inbound (`InboundScanner`): reads what proton's Python API does not expose (a transfer's
message-format, an attach's desired-capabilities) and lowers the client's max-frame-size by
the padding headroom, so padded frames never exceed the size the client asked for. It also
guards the door: bytes that do not start with an AMQP or SASL protocol header (a TLS greeting,
an HTTP request) and frames larger than the server's max-frame-size stop the scan with a
`ProtocolViolation` at once, so no input is buffered beyond one frame of that size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from devstack.eventhubs import amqp_codec as codec

FRAME_HEADER = struct.Struct(">IBBH")
PROTOCOL_HEADER_PREFIX = b"AMQP"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_FRAME = 0
SASL_FRAME = 1
UNLIMITED_FRAME_SIZE = 0xFFFFFFFF
MIN_MAX_FRAME_SIZE = 512
# The most padding can add to one frame: list8 -> list32 (+6) and up to 14 null fields,
# plus nested source/target/error lists. Generous on purpose.
PADDING_HEADROOM = 256

OPEN, BEGIN, ATTACH, FLOW, TRANSFER, DISPOSITION, DETACH, END, CLOSE = range(0x10, 0x19)
_TRANSFER_STATE_FIELD = 9  # the only transfer field that can hold a composite

# Field counts of AMQP 1.0 performatives (transport + SASL) and of the composites they carry.
PERFORMATIVE_FIELDS: dict[int, int] = {
    OPEN: 10, BEGIN: 8, ATTACH: 14, FLOW: 11, TRANSFER: 11,
    DISPOSITION: 6, DETACH: 3, END: 1, CLOSE: 1,
    0x40: 1, 0x41: 3, 0x42: 1, 0x43: 1, 0x44: 2,  # sasl mechanisms/init/challenge/response/outcome
}  # fmt: skip
NESTED_FIELDS: dict[int, int] = {
    0x1D: 3,  # error
    0x23: 2,  # received
    0x24: 0,  # accepted
    0x25: 1,  # rejected
    0x26: 0,  # released
    0x27: 3,  # modified
    0x28: 11,  # source
    0x29: 7,  # target
}

Buffer = bytes | bytearray | memoryview


def _descriptor_code(buf: Buffer, pos: int) -> tuple[int | None, int]:
    """Read a numeric descriptor at `pos` (just after 0x00); return (code or None, value pos)."""
    kind = buf[pos]
    if kind == 0x53:
        return buf[pos + 1], pos + 2
    if kind == 0x80:
        return int.from_bytes(buf[pos + 1 : pos + 9], "big"), pos + 9
    return None, codec.skip(buf, pos)


def pad_list(buf: Buffer, pos: int, expected: int) -> bytes | None:
    """The list at `pos` padded to `expected` fields (nested ones too); None if already full."""
    count, item_pos, _ = codec.compound_items(buf, pos)
    items: list[bytes] = []
    changed = count < expected
    for _ in range(count):
        item_end = codec.skip(buf, item_pos)
        fixed = pad_nested(buf, item_pos) if buf[item_pos] == codec.DESCRIBED else None
        if fixed is None:
            items.append(bytes(buf[item_pos:item_end]))
        else:
            items.append(fixed)
            changed = True
        item_pos = item_end
    if not changed:
        return None
    items.extend([b"\x40"] * (expected - count))
    return codec.encode_list32(items)


def pad_nested(buf: Buffer, pos: int) -> bytes | None:
    """A known described composite at `pos` with full field counts, or None if nothing to do."""
    code, value_pos = _descriptor_code(buf, pos + 1)
    expected = NESTED_FIELDS.get(code) if code is not None else None
    if expected is None or buf[value_pos] not in (codec.LIST0, codec.LIST8, codec.LIST32):
        return None
    padded = pad_list(buf, value_pos, expected)
    if padded is None:
        return None
    return bytes(buf[pos:value_pos]) + padded


def _pad_transfer(frame: Buffer, list_pos: int, list_end: int, expected: int) -> bytes | None:
    """Transfers are most frames: when only plain fields are present, append nulls directly."""
    count, item_pos, _ = codec.compound_items(frame, list_pos)
    if count >= expected or count > _TRANSFER_STATE_FIELD:
        return pad_list(frame, list_pos, expected)
    items = bytes(frame[item_pos:list_end]) + b"\x40" * (expected - count)
    if frame[list_pos] != codec.LIST32 and len(items) < 255:
        return bytes((codec.LIST8, len(items) + 1, expected)) + items
    return codec.encode_list32_raw(items, expected)


def pad_frame(frame: Buffer) -> bytes:
    """One complete frame with its performative padded to the full field count."""
    size, doff, frame_type, channel = FRAME_HEADER.unpack_from(frame, 0)
    body = doff * 4
    if size <= body or frame[body] != codec.DESCRIBED:
        return bytes(frame)  # heartbeat, or not a performative
    code, list_pos = _descriptor_code(frame, body + 1)
    expected = PERFORMATIVE_FIELDS.get(code) if code is not None else None
    if expected is None:
        return bytes(frame)
    list_end = codec.skip(frame, list_pos)
    if code == TRANSFER:
        padded = _pad_transfer(frame, list_pos, list_end, expected)
    else:
        padded = pad_list(frame, list_pos, expected)
    if padded is None:
        return bytes(frame)
    new_size = size - (list_end - list_pos) + len(padded)
    return b"".join(
        (
            FRAME_HEADER.pack(new_size, doff, frame_type, channel),
            frame[FRAME_HEADER.size : list_pos],
            padded,
            frame[list_end:size],
        )
    )


class _Reassembly:
    """The bytes of a unit that has not completed yet, kept across reads."""

    def __init__(self, needed: int) -> None:
        self._rest = bytearray()  # the start of an incomplete unit
        self._needed = needed  # bytes `_rest` must reach before that unit can complete

    def _joined(self, data: bytes) -> bytes | None:
        """What to scan: the kept bytes and `data`; None while still inside one unit."""
        if not self._rest:
            return data
        self._rest += data
        if len(self._rest) < self._needed:
            return None
        buf = bytes(self._rest)
        self._rest.clear()
        return buf


class _FrameSplitter(_Reassembly):
    """Cuts proton's outbound byte stream into protocol headers and complete frames."""

    def __init__(self) -> None:
        super().__init__(needed=8)

    def split(self, data: bytes) -> list[bytes]:
        buf = self._joined(data)
        if buf is None:
            return []
        units: list[bytes] = []
        pos = 0
        size = 8
        while len(buf) - pos >= 8:
            if buf[pos : pos + 4] == PROTOCOL_HEADER_PREFIX:
                size = 8
            else:
                # Proton writes well-formed frames; `max` only guarantees progress (client
                # bytes are checked by `_InboundSplitter`).
                size = max(8, FRAME_HEADER.unpack_from(buf, pos)[0])
            if len(buf) - pos < size:
                break
            units.append(buf if size == len(buf) else buf[pos : pos + size])
            pos += size
            size = 8
        self._rest += buf[pos:]
        self._needed = size
        return units


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """Why the scan stopped: `not-amqp` (answer with the AMQP header and close) or a framing
    error (close with `amqp:connection:framing-error`); `description` names the bytes."""

    kind: Literal["not-amqp", "framing-error"]
    description: str


class _InboundSplitter(_Reassembly):
    """Cuts the client's byte stream into protocol headers and frames, and checks both.

    The stream must open with a protocol header; after the client's SASL frames the AMQP header
    may follow. A frame may not exceed `max_frame_size` nor be shorter than its own header.
    After a violation nothing more is accepted.
    """

    def __init__(self, max_frame_size: int) -> None:
        super().__init__(needed=1)
        self.max_frame_size = max_frame_size
        self.violation: ProtocolViolation | None = None
        self._started = False  # a protocol header was accepted
        self._header_allowed = True  # at the start, and after a SASL frame

    def split(self, data: bytes) -> list[bytes]:
        if self.violation is not None:
            return []
        buf = self._joined(data)
        if buf is None:
            return []
        units: list[bytes] = []
        pos = 0
        needed = 1
        while (available := len(buf) - pos) > 0:
            seen = min(available, len(PROTOCOL_HEADER_PREFIX))
            if self._header_allowed and buf[pos : pos + seen] == PROTOCOL_HEADER_PREFIX[:seen]:
                if available < len(AMQP_HEADER):
                    needed = len(AMQP_HEADER)  # a header in the making
                    break
                header = buf[pos : pos + len(AMQP_HEADER)]
                if header not in (AMQP_HEADER, SASL_HEADER):
                    self._stop("not-amqp", f"unsupported protocol header {header!r}")
                    break
                units.append(header)
                pos += len(header)
                self._started = True
                self._header_allowed = False
                continue
            if not self._started:
                self._stop("not-amqp", f"not an AMQP protocol header: {buf[:16]!r}")
                break
            if available < FRAME_HEADER.size:
                needed = FRAME_HEADER.size
                break
            size, _, frame_type, _ = FRAME_HEADER.unpack_from(buf, pos)
            if not FRAME_HEADER.size <= size <= self.max_frame_size:
                self._stop(
                    "framing-error",
                    f"frame of {size} bytes: frames must be {FRAME_HEADER.size} to"
                    f" {self.max_frame_size} bytes (the max-frame-size this server announced)",
                )
                break
            if available < size:
                needed = size
                break
            units.append(buf if size == len(buf) else buf[pos : pos + size])
            pos += size
            # The client's AMQP header follows its SASL frames (init, maybe a response).
            self._header_allowed = frame_type == SASL_FRAME
        if self.violation is None:
            self._rest += buf[pos:]
            self._needed = needed
        return units

    def _stop(self, kind: Literal["not-amqp", "framing-error"], description: str) -> None:
        self.violation = ProtocolViolation(kind, description)


class OutboundFramePadder:
    """Pads every performative proton writes before the bytes reach the socket."""

    def __init__(self) -> None:
        self._splitter = _FrameSplitter()

    def feed(self, data: bytes) -> bytes:
        out = []
        for unit in self._splitter.split(data):
            if unit[:4] == PROTOCOL_HEADER_PREFIX:
                out.append(unit)
            else:
                out.append(pad_frame(unit))
        return b"".join(out)


@dataclass
class InboundScanner:
    """Watches the client's frames on their way into proton; see the module docstring."""

    max_frame_size: int = 1024 * 1024
    headroom: int = PADDING_HEADROOM
    _splitter: _InboundSplitter = field(init=False)
    # (channel, handle) -> link name, for links on which the client sends.
    _sending_links: dict[tuple[int, int], str] = field(default_factory=dict)
    # (channel, handle) -> link name, for links on which the client receives.
    _receiving_links: dict[tuple[int, int], str] = field(default_factory=dict)
    # (link name, delivery tag) -> message format, only for formats other than 0.
    _formats: dict[tuple[str, bytes], int] = field(default_factory=dict)
    # link name -> desired capabilities, for links on which the client receives.
    _capabilities: dict[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._splitter = _InboundSplitter(self.max_frame_size)

    @property
    def violation(self) -> ProtocolViolation | None:
        """Why the scan stopped, once the client broke the protocol (then `feed` returns b"")."""
        return self._splitter.violation

    def feed(self, data: bytes) -> bytes:
        """Consume client bytes; return what to push into proton (complete units only)."""
        out = []
        for unit in self._splitter.split(data):
            if len(unit) <= 8:
                out.append(unit)
                continue
            out.append(self._inspect(unit))
        return b"".join(out)

    def message_format(self, link_name: str, tag: bytes) -> int:
        """The message-format of a complete incoming delivery (0 unless it was special)."""
        return self._formats.pop((link_name, tag), 0)

    def desired_capabilities(self, link_name: str) -> frozenset[str]:
        """What the client's attach of a receiving link asked for."""
        return self._capabilities.get(link_name, frozenset())

    def _inspect(self, frame: bytes) -> bytes:
        _, doff, frame_type, channel = FRAME_HEADER.unpack_from(frame, 0)
        body = doff * 4
        if frame_type != AMQP_FRAME or len(frame) <= body + 3 or frame[body] != codec.DESCRIBED:
            return frame
        code, list_pos = _descriptor_code(frame, body + 1)
        if code == TRANSFER:
            self._on_transfer(frame, list_pos, channel)
        elif code == ATTACH:
            self._on_attach(frame, list_pos, channel)
        elif code == DETACH:
            handle = self._fields(frame, list_pos, 1)[0]
            sender = self._sending_links.pop((channel, handle), None)
            if sender is not None:  # forget formats of deliveries that never completed
                for key in [k for k in self._formats if k[0] == sender]:
                    del self._formats[key]
            name = self._receiving_links.pop((channel, handle), None)
            if name is not None:
                self._capabilities.pop(name, None)
        elif code == OPEN:
            return self._lower_max_frame_size(frame, list_pos)
        return frame

    @staticmethod
    def _fields(buf: Buffer, list_pos: int, wanted: int) -> list[Any]:
        """The first `wanted` fields of the list at `list_pos`, None-padded."""
        count, pos, _ = codec.compound_items(buf, list_pos)
        values: list[Any] = []
        for _ in range(min(count, wanted)):
            value, pos = codec.decode(buf, pos)
            values.append(value)
        return values + [None] * (wanted - len(values))

    def _on_transfer(self, frame: bytes, list_pos: int, channel: int) -> None:
        handle, _, tag, message_format = self._fields(frame, list_pos, 4)
        if message_format and tag is not None:
            name = self._sending_links.get((channel, handle))
            if name is not None:
                self._formats[(name, tag)] = message_format

    def _on_attach(self, frame: bytes, list_pos: int, channel: int) -> None:
        fields = self._fields(frame, list_pos, 13)
        name, handle, role = fields[0], fields[1], fields[2]
        if role:  # the client receives: remember what it asked for
            desired = fields[12]
            if isinstance(desired, str):
                desired = [desired]
            self._receiving_links[(channel, handle)] = name
            self._capabilities[name] = frozenset(desired or ())
        else:
            self._sending_links[(channel, handle)] = name

    def _lower_max_frame_size(self, frame: bytes, list_pos: int) -> bytes:
        count, pos, list_end = codec.compound_items(frame, list_pos)
        items = []
        for _ in range(count):
            end = codec.skip(frame, pos)
            items.append(bytes(frame[pos:end]))
            pos = end
        if count < 3:
            return frame
        max_frame, _ = codec.decode(items[2])
        if max_frame is None or max_frame >= UNLIMITED_FRAME_SIZE:
            return frame
        items[2] = codec.encode_uint(max(MIN_MAX_FRAME_SIZE, max_frame - self.headroom))
        new_list = codec.encode_list32(items)
        size, doff, frame_type, channel = FRAME_HEADER.unpack_from(frame, 0)
        new_size = size - (list_end - list_pos) + len(new_list)
        return b"".join(
            (
                FRAME_HEADER.pack(new_size, doff, frame_type, channel),
                frame[FRAME_HEADER.size : list_pos],
                new_list,
                frame[list_end:],
            )
        )
