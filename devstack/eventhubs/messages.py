"""Events as encoded AMQP messages: unpack what a producer sent, stamp what a consumer gets.

An encoded AMQP message is a run of sections (header, delivery-annotations,
message-annotations, properties, application-properties, body, footer). The emulator never
decodes bodies or properties: it keeps them byte for byte and replaces the
message-annotations section with one carrying the broker annotations. Delivery annotations in
their spec position are dropped (the service ignores them there); the SDK writes them after
the body, where the service passes them on, and so does the emulator. Delivery-time extras
(runtime metrics) are spliced in right after the header.
"""

from __future__ import annotations

from dataclasses import dataclass

from devstack.eventhubs import amqp_codec as codec
from devstack.eventhubs.errors import AmqpDecodeError

BATCH_MESSAGE_FORMAT = 0x80013700

HEADER = 0x70
DELIVERY_ANNOTATIONS = 0x71
MESSAGE_ANNOTATIONS = 0x72
DATA = 0x75
FOOTER = 0x78
_SECTION_NAMES = {
    "amqp:header:list": 0x70,
    "amqp:delivery-annotations:map": 0x71,
    "amqp:message-annotations:map": 0x72,
    "amqp:properties:list": 0x73,
    "amqp:application-properties:map": 0x74,
    "amqp:data:binary": 0x75,
    "amqp:amqp-sequence:list": 0x76,
    "amqp:amqp-value:*": 0x77,
    "amqp:footer:map": 0x78,
}

SEQUENCE_NUMBER = "x-opt-sequence-number"
OFFSET = "x-opt-offset"
ENQUEUED_TIME = "x-opt-enqueued-time"
PARTITION_KEY = "x-opt-partition-key"
_BROKER_OWNED = frozenset({SEQUENCE_NUMBER, OFFSET, ENQUEUED_TIME})

_SEQUENCE_KEY = codec.encode_symbol(SEQUENCE_NUMBER)
_OFFSET_KEY = codec.encode_symbol(OFFSET)
_ENQUEUED_KEY = codec.encode_symbol(ENQUEUED_TIME)
_PARTITION_KEY_KEY = codec.encode_symbol(PARTITION_KEY)
_LAST_SEQUENCE_KEY = codec.encode_symbol("last_enqueued_sequence_number")
_LAST_OFFSET_KEY = codec.encode_symbol("last_enqueued_offset")
_LAST_TIME_KEY = codec.encode_symbol("last_enqueued_time_utc")
_RETRIEVAL_TIME_KEY = codec.encode_symbol("runtime_info_retrieval_time_utc")


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """One event as a producer sent it, cut into the parts the emulator rewrites."""

    header: bytes  # the encoded header section, or b""
    annotation_pairs: bytes  # encoded key/value pairs of its message annotations, minus ours
    annotation_count: int  # number of pairs in `annotation_pairs`
    rest: bytes  # properties, application properties, body and footer, as sent
    partition_key: str | None


@dataclass(frozen=True, slots=True)
class Transfer:
    """What one incoming transfer holds: its events and the partition key it was sent with."""

    events: list[IncomingEvent]
    partition_key: str | None


def _sections(raw: bytes) -> list[tuple[int, int, int, int]]:
    """(section code, start, value start, end) of every section of an encoded message."""
    sections = []
    pos = 0
    while pos < len(raw):
        if raw[pos] != codec.DESCRIBED:
            raise AmqpDecodeError(f"expected a message section at byte {pos}")
        kind = raw[pos + 1]
        if kind == 0x53:
            code, value_pos = raw[pos + 2], pos + 3
        elif kind == 0x80:
            code, value_pos = int.from_bytes(raw[pos + 2 : pos + 10], "big"), pos + 10
        else:
            name, value_pos = codec.decode(raw, pos + 1)
            code = _SECTION_NAMES.get(str(name), -1)
        if not HEADER <= code <= FOOTER:
            raise AmqpDecodeError(f"unknown message section descriptor at byte {pos}")
        end = codec.skip(raw, value_pos)
        sections.append((code, pos, value_pos, end))
        pos = end
    return sections


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None if value is None else str(value)


def parse_event(raw: bytes) -> IncomingEvent:
    """Cut one encoded message into an IncomingEvent (validating its structure)."""
    header = b""
    pairs: list[bytes] = []
    partition_key = None
    rest_start = len(raw)
    for code, start, value_pos, end in _sections(raw):
        if code == HEADER:
            header = raw[start:end]
        elif code == MESSAGE_ANNOTATIONS:
            count, pos, _ = codec.compound_items(raw, value_pos)
            for _ in range(count // 2):
                key_end = codec.skip(raw, pos)
                value_end = codec.skip(raw, key_end)
                key, _ = codec.decode(raw, pos)
                if key == PARTITION_KEY:
                    partition_key = _text(codec.decode(raw, key_end)[0])
                if key not in _BROKER_OWNED:
                    pairs.append(raw[pos:value_end])
                pos = value_end
        elif code > MESSAGE_ANNOTATIONS:
            rest_start = min(rest_start, start)
    return IncomingEvent(header, b"".join(pairs), len(pairs), raw[rest_start:], partition_key)


def parse_transfer(raw: bytes, message_format: int) -> Transfer:
    """The events in one transfer: a single message, or a batch of messages in data sections."""
    if message_format != BATCH_MESSAGE_FORMAT:
        event = parse_event(raw)
        return Transfer([event], event.partition_key)
    envelope_key = None
    events = []
    for code, _, value_pos, end in _sections(raw):
        if code == MESSAGE_ANNOTATIONS:
            annotations, _ = codec.decode(raw, value_pos)
            if isinstance(annotations, dict):
                envelope_key = _text(annotations.get(PARTITION_KEY))
        elif code == DATA:
            inner, _ = codec.decode(raw[value_pos:end])
            events.append(parse_event(inner))
    if envelope_key is None and events:
        envelope_key = events[0].partition_key
    return Transfer(events, envelope_key)


def stamp(
    event: IncomingEvent, sequence_number: int, offset: str, enqueued_ms: int
) -> tuple[bytes, int]:
    """The event as consumers receive it (broker annotations added) and its header length."""
    extra = [
        _SEQUENCE_KEY,
        codec.encode_long(sequence_number),
        _OFFSET_KEY,
        codec.encode_string(offset),
        _ENQUEUED_KEY,
        codec.encode_timestamp(enqueued_ms),
    ]
    count = event.annotation_count + 3
    pairs = event.annotation_pairs + b"".join(extra)
    annotations = codec.encode_described(MESSAGE_ANNOTATIONS, codec.encode_map32(pairs, count))
    return event.header + annotations + event.rest, len(event.header)


def with_partition_key(event: IncomingEvent, key: str | None) -> IncomingEvent:
    """The event carrying `key` as its partition key annotation if it has none."""
    if key is None or event.partition_key is not None:
        return event
    pair = _PARTITION_KEY_KEY + codec.encode_string(key)
    return IncomingEvent(
        event.header,
        event.annotation_pairs + pair,
        event.annotation_count + 1,
        event.rest,
        key,
    )


def runtime_metrics(
    last_sequence_number: int, last_offset: str, last_enqueued_ms: int, retrieval_ms: int
) -> bytes:
    """A delivery-annotations section with the partition's last-enqueued-event metrics."""
    pairs = b"".join(
        (
            _LAST_SEQUENCE_KEY,
            codec.encode_long(last_sequence_number),
            _LAST_OFFSET_KEY,
            codec.encode_string(last_offset),
            _LAST_TIME_KEY,
            codec.encode_timestamp(last_enqueued_ms),
            _RETRIEVAL_TIME_KEY,
            codec.encode_timestamp(retrieval_ms),
        )
    )
    return codec.encode_described(DELIVERY_ANNOTATIONS, codec.encode_map32(pairs, 4))
