"""Pydantic models of the three accepted payload formats (SPEC 2), tolerant of drift.

Unknown fields are kept (`extra="allow"`), numbers sent as strings are coerced, unknown enum
values are kept as received, and an optional field holding a value of the wrong type reads as
absent rather than failing the payload. Only what identity and order need is required.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from schemas.timestamps import EpochMs

PayloadFormat = Literal["envelope", "eventbridge", "notification"]
TOPIC_PREFIX = "v2.detail.events.conversation."
"""Every topic whose events are micro-events (SPEC 2); any other topic is unsupported."""
HEARTBEAT_TOPIC = "channel.metadata"
"""The Notifications API's keep-alive (`eventBody.message: "WebSocket Heartbeat"`): a relay may
forward it; it is no event of any conversation."""


def _lenient_str(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def _lenient_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Integers are kept within 64 bits, as JSON tools and Table Storage take them."""


def _lenient_int(value: object) -> int | None:
    number = _lenient_float(value)
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        return None
    return int(number)


def _string_list(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    strings = (_lenient_str(item) for item in items)
    return tuple(s for s in strings if s)


def _required_id(value: object) -> str:
    text = _lenient_str(value)
    if not text:
        raise ValueError("a non-empty conversation id is required")
    return text


def _strict_int(value: object) -> int:
    """Sequence numbers: integers, or strings of digits; anything else is not an identity."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and value.isascii():
        number = int(value.strip())  # past 4,300 digits Python raises ValueError: as wanted
    if number is None:
        raise ValueError(f"expected an integer, got {str(value)[:64]!r}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"expected a 64-bit integer, got {str(value)[:64]!r}")
    return number


OptStr = Annotated[str | None, BeforeValidator(_lenient_str)]
OptFloat = Annotated[float | None, BeforeValidator(_lenient_float)]
OptInt = Annotated[int | None, BeforeValidator(_lenient_int)]
StrList = Annotated[tuple[str, ...], BeforeValidator(_string_list)]
ConversationId = Annotated[str, BeforeValidator(_required_id)]
Sequence = Annotated[int, BeforeValidator(_strict_int)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class DetailData(_Tolerant):
    """`details[].data`: the union of every known micro-event's fields, all optional."""

    status: OptStr = None
    duration: OptFloat = None
    participantId: OptStr = None
    purpose: OptStr = None
    agentId: OptStr = None
    queueId: OptStr = None
    skillIds: StrList = ()
    wrapUpCode: OptStr = None
    wrapupCode: OptStr = None
    callerNumber: OptStr = None
    calleeNumber: OptStr = None
    direction: OptStr = None
    holdDuration: OptFloat = None
    fromAgentId: OptStr = None
    toAgentId: OptStr = None
    toQueueId: OptStr = None
    messageId: OptStr = None
    threadId: OptStr = None
    inReplyTo: OptStr = None
    subject: OptStr = None


def _data_or_empty(value: object) -> object:
    return value if isinstance(value, dict) else {}


class Detail(_Tolerant):
    """One micro-event of an envelope."""

    name: Annotated[str, BeforeValidator(_required_id)]
    type: OptStr = None
    data: Annotated[DetailData, BeforeValidator(_data_or_empty)] = DetailData()
    sequence: Sequence
    timestamp: EpochMs


class EnvelopeData(_Tolerant):
    """`data` of an envelope: the conversation and its micro-events (validated one by one)."""

    id: ConversationId
    type: OptStr = None
    createdTimestamp: EpochMs | None = None
    updatedTimestamp: EpochMs | None = None
    details: list[Any] = Field(default_factory=list)


class Envelope(_Tolerant):
    """The primary webhook envelope (`type: v2.detail.events.conversation`)."""

    id: OptStr = None
    type: OptStr = None
    createdTimestamp: EpochMs
    data: EnvelopeData
    metadata: Any = None


class GenesysEventBody(_Tolerant):
    """The flat `eventBody` of a Genesys conversation detail event."""

    eventTime: EpochMs
    conversationId: ConversationId
    participantId: OptStr = None
    sessionId: OptStr = None
    mediaType: OptStr = None
    direction: OptStr = None
    ani: OptStr = None
    dnis: OptStr = None
    queueId: OptStr = None
    userId: OptStr = None
    answeredUserId: OptStr = None
    requestedRoutingSkillIds: StrList = ()
    disconnectType: OptStr = None
    heldDurationMs: OptInt = None
    wrapupCode: OptStr = None
    wrapUpCode: OptStr = None
    wrapupDurationMs: OptInt = None
    agentId: OptStr = None
    skillIds: StrList = ()
    callerNumber: OptStr = None
    calleeNumber: OptStr = None


class Notification(_Tolerant):
    """Genesys notification / Process Automation relay: `{topicName, version, eventBody}`."""

    topicName: Annotated[str, BeforeValidator(_required_id)]
    version: OptStr = None
    eventBody: GenesysEventBody
    metadata: Any = None


class EventBridge(_Tolerant):
    """Genesys Cloud → Amazon EventBridge → relay: the notification sits in `detail`."""

    detail_type: OptStr = Field(default=None, alias="detail-type")
    source: OptStr = None
    id: OptStr = None
    time: OptStr = None
    detail: Notification


def detect_format(payload: object) -> PayloadFormat | None:
    """Recognise a payload by its shape; None when it is none of the accepted formats."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    if isinstance(data, dict) and "details" in data:
        return "envelope"
    detail = payload.get("detail")
    if isinstance(detail, dict) and ("eventBody" in detail or "topicName" in detail):
        return "eventbridge"
    if "eventBody" in payload and "topicName" in payload:
        return "notification"
    return None


def is_heartbeat(payload: object) -> bool:
    """A Notifications API heartbeat (`topicName: channel.metadata`), as a relay forwards it."""
    return isinstance(payload, dict) and payload.get("topicName") == HEARTBEAT_TOPIC


def topic_of(fmt: PayloadFormat, payload: object) -> str | None:
    """The `topicName` of a Genesys-format payload as text (None: absent or not text-like)."""
    if fmt == "envelope" or not isinstance(payload, dict):
        return None
    holder = payload.get("detail") if fmt == "eventbridge" else payload
    if not isinstance(holder, dict):
        return None
    return _lenient_str(holder.get("topicName"))


def is_detail_topic(topic: str) -> bool:
    """Whether a topic is a conversation detail topic, the only kind that holds micro-events."""
    return topic.startswith(TOPIC_PREFIX)


def conversation_id_of(payload: object) -> str | None:
    """The conversation id a payload names, without validating the rest (ingest routing)."""
    fmt = detect_format(payload)
    if fmt is None or not isinstance(payload, dict):
        return None
    if fmt == "envelope":
        raw = payload["data"].get("id")
    else:
        holder = payload["detail"] if fmt == "eventbridge" else payload
        body = holder.get("eventBody")
        raw = body.get("conversationId") if isinstance(body, dict) else None
    return _lenient_str(raw)
