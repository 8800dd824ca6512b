"""Raw deliveries → canonical micro-events, or rejections that say exactly what was wrong.

Nothing here raises on bad input: every payload either yields micro-events or a `Rejection`
(which the service turns into a dead letter). One payload with some bad details yields both:
its good micro-events are applied and the payload is kept whole as one dead letter. The one
exception is a Notifications API heartbeat (`is_heartbeat`): it is no event and nothing is
wrong with it, so it yields neither; callers count it.

A payload is classified before it is validated: its shape gives its format (`detect_format`),
and a Genesys-format payload whose topic is not a conversation detail topic is rejected as
`unsupported-topic` whatever else it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.micro_event import MicroEvent
from schemas.wire import (
    TOPIC_PREFIX,
    Detail,
    Envelope,
    EventBridge,
    Notification,
    PayloadFormat,
    detect_format,
    is_detail_topic,
    is_heartbeat,
    topic_of,
)
from transform.events import envelope_event, genesys_event
from transform.fastpath import fast_events
from transform.jsontext import dump_json

UTF8_BOM = b"\xef\xbb\xbf"


class RejectReason(StrEnum):
    """Why input became a dead letter; stable strings, used in metrics and dead letters."""

    EMPTY = "empty"
    INVALID_JSON = "invalid-json"
    NOT_AN_OBJECT = "not-an-object"
    UNRECOGNIZED = "unrecognized-payload"
    UNSUPPORTED_TOPIC = "unsupported-topic"
    MISSING_CONVERSATION_ID = "missing-conversation-id"
    INVALID_PAYLOAD = "invalid-payload"
    INVALID_MICRO_EVENT = "invalid-micro-event"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload (or whole delivery) that cannot be applied, with its original bytes."""

    reason: RejectReason
    error: str
    raw: bytes
    payload_index: int | None
    """Position in a JSON-array delivery; None for the whole delivery."""


@dataclass(slots=True)
class ParsedDelivery:
    """What one delivery held."""

    events: list[MicroEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    payload_count: int = 0
    heartbeats: int = 0
    """Notifications API heartbeats among the payloads: skipped, counted."""


@dataclass(slots=True)  # not frozen: built once per delivery, and frozen costs 3x to build
class DecodedDelivery:
    """One delivery split into its payloads, or the reason the whole of it is unusable."""

    raw: bytes
    """The bytes as delivered."""
    text: bytes
    """The bytes without a UTF-8 byte-order mark."""
    payloads: list[tuple[int | None, object]]
    """(position in a JSON array, or None for a single payload; the decoded payload)."""
    rejection: Rejection | None = None
    """Why the delivery as a whole is unusable (empty, not JSON, an empty array)."""


def decode_delivery(raw: bytes) -> DecodedDelivery:
    """The one parser of a delivery's envelope, shared by ingest and the transform.

    A body is one payload or a JSON array of payloads. Whatever is wrong with the whole body
    has one reason and one text, whichever stage finds it.
    """
    text = raw[len(UTF8_BOM) :] if raw.startswith(UTF8_BOM) else raw
    if not text.strip():
        return DecodedDelivery(
            raw, text, [], Rejection(RejectReason.EMPTY, "the body is empty", raw, None)
        )
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return DecodedDelivery(
            raw, text, [], Rejection(RejectReason.INVALID_JSON, str(e), raw, None)
        )
    if isinstance(document, list):
        rejection = (
            None
            if document
            else Rejection(RejectReason.EMPTY, "the array holds no payloads", raw, None)
        )
        return DecodedDelivery(raw, text, list(enumerate(document)), rejection)
    return DecodedDelivery(raw, text, [(None, document)])


def parse_delivery(raw: bytes) -> ParsedDelivery:
    """Parse one delivery: a single payload or a JSON array of payloads."""
    parsed = ParsedDelivery()
    decoded = decode_delivery(raw)
    if decoded.rejection is not None:
        parsed.rejections.append(decoded.rejection)
    for index, payload in decoded.payloads:
        _normalize_into(parsed, payload, index, raw if index is None else None)
    return parsed


def _normalize_into(
    parsed: ParsedDelivery, payload: object, index: int | None, raw: bytes | None
) -> None:
    parsed.payload_count += 1
    if is_heartbeat(payload):
        parsed.heartbeats += 1
        return
    events, rejection = normalize_payload(payload, index)
    parsed.events.extend(events)
    if rejection is not None:
        if raw is not None:
            rejection = Rejection(rejection.reason, rejection.error, raw, index)
        parsed.rejections.append(rejection)


def normalize_payload(
    payload: object, index: int | None = None
) -> tuple[list[MicroEvent], Rejection | None]:
    """Normalize one decoded payload into micro-events (and a rejection, if any part is bad).

    A heartbeat gives neither (`is_heartbeat` tells it apart from an envelope with no details).
    """
    if is_heartbeat(payload):
        return [], None
    fmt = detect_format(payload)
    if fmt is None:
        reason = (
            RejectReason.UNRECOGNIZED if isinstance(payload, dict) else (RejectReason.NOT_AN_OBJECT)
        )
        error = (
            "the payload matches none of the accepted formats (envelope, eventbridge,"
            f" notification); top-level keys: {_keys_of(payload)}"
            if isinstance(payload, dict)
            else f"expected a JSON object, got {type(payload).__name__}"
        )
        return [], Rejection(reason, error, _dump(payload), index)
    if fmt != "envelope":
        unsupported = _unsupported_topic(fmt, payload, index)
        if unsupported is not None:
            return [], unsupported
    fast = fast_events(fmt, payload)
    if fast is not None:
        return fast, None
    return tolerant_events(fmt, payload, index)


def tolerant_events(
    fmt: PayloadFormat, payload: object, index: int | None = None
) -> tuple[list[MicroEvent], Rejection | None]:
    """The tolerant path: drift-tolerant models decide, and say what is wrong when it is."""
    try:
        if fmt == "envelope":
            return _from_envelope(Envelope.model_validate(payload), payload, index)
        if fmt == "eventbridge":
            notification = EventBridge.model_validate(payload).detail
            return [_from_genesys(notification, "eventbridge")], None
        return [_from_genesys(Notification.model_validate(payload), "notification")], None
    except ValidationError as e:
        return [], Rejection(_reason_for(e), _describe(e), _dump(payload), index)


def _from_envelope(
    envelope: Envelope, payload: object, index: int | None
) -> tuple[list[MicroEvent], Rejection | None]:
    data = envelope.data
    events: list[MicroEvent] = []
    errors: list[str] = []
    for position, raw_detail in enumerate(data.details):
        try:
            detail = Detail.model_validate(raw_detail)
        except ValidationError as e:
            errors.append(f"details[{position}]: {_describe(e)}")
            continue
        events.append(
            envelope_event(
                data.id,
                created=envelope.createdTimestamp,
                media=data.type,
                name=detail.name,
                sequence=detail.sequence,
                timestamp_ms=detail.timestamp,
                data=detail.data.model_dump(),
            )
        )
    if not errors:
        return events, None
    error = "; ".join(errors)
    return events, Rejection(RejectReason.INVALID_MICRO_EVENT, error, _dump(payload), index)


def _from_genesys(notification: Notification, fmt: PayloadFormat) -> MicroEvent:
    body = notification.eventBody
    return genesys_event(
        fmt, notification.topicName, body.conversationId, body.eventTime, body.model_dump()
    )


def _unsupported_topic(fmt: PayloadFormat, payload: object, index: int | None) -> Rejection | None:
    """A Genesys-format payload of any topic but a conversation detail topic (SPEC 2).

    A missing topic is left to validation (`invalid-payload`): it names no topic at all.
    """
    topic = topic_of(fmt, payload)
    if topic is None or is_detail_topic(topic):
        return None
    error = (
        f"topic {topic[:120]!r} is not a conversation detail topic ({TOPIC_PREFIX}{{id}}.{{kind}}):"
        " only those carry micro-events; subscribe to the detail topics only"
    )
    return Rejection(RejectReason.UNSUPPORTED_TOPIC, error, _dump(payload), index)


def _keys_of(payload: dict[Any, Any]) -> str:
    keys = sorted(str(k) for k in payload)[:10]
    return ", ".join(keys) if keys else "(none)"


def _dump(payload: object) -> bytes:
    try:
        return dump_json(payload)
    except (TypeError, ValueError):  # not for decoded JSON, but a rejection must never raise
        return repr(payload).encode()


def _iter_locations(error: ValidationError) -> Iterator[tuple[str, str]]:
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        yield location, item["msg"]


def _describe(error: ValidationError) -> str:
    parts = [f"{loc or '(root)'}: {msg}" for loc, msg in _iter_locations(error)]
    return "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")


_ID_LOCATIONS = frozenset(
    {"data.id", "eventBody.conversationId", "detail.eventBody.conversationId"}
)


def _reason_for(error: ValidationError) -> RejectReason:
    if any(loc in _ID_LOCATIONS for loc, _ in _iter_locations(error)):
        return RejectReason.MISSING_CONVERSATION_ID
    return RejectReason.INVALID_PAYLOAD
