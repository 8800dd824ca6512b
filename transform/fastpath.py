"""The fast path of normalization: one pydantic-core call per payload for clean input.

The strict schemas below accept only the exact, clean shape (strings where strings belong,
JSON integers for sequence numbers and epoch times); anything else — numbers as strings,
wrong types, missing fields — makes the fast path give up and the tolerant models in
`schemas.wire` decide, so drift costs speed, never correctness. Timestamps are parsed by the
same function on both paths.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from pydantic import Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from schemas.micro_event import MicroEvent
from schemas.timestamps import MAX_MS, MIN_MS, TimestampError, to_epoch_ms
from schemas.wire import INT64_MAX, INT64_MIN, PayloadFormat
from transform.events import envelope_event, genesys_event

NonEmpty = Annotated[str, Field(min_length=1)]
StrictInt = Annotated[int, Strict(), Field(ge=INT64_MIN, le=INT64_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _DetailData(TypedDict, total=False):
    status: str
    duration: FiniteFloat
    participantId: str
    purpose: str
    agentId: str
    queueId: str
    skillIds: list[str]
    wrapUpCode: str
    wrapupCode: str
    callerNumber: str
    calleeNumber: str
    direction: str
    fromAgentId: str
    toAgentId: str
    toQueueId: str


class _Detail(TypedDict):
    name: NonEmpty
    sequence: StrictInt
    timestamp: str
    data: NotRequired[_DetailData]


class _EnvelopeData(TypedDict):
    id: NonEmpty
    type: NotRequired[str]
    details: list[_Detail]


class _Envelope(TypedDict):
    createdTimestamp: str
    data: _EnvelopeData


class _Body(TypedDict, total=False):
    eventTime: StrictInt
    conversationId: NonEmpty
    participantId: str
    sessionId: str
    mediaType: str
    direction: str
    ani: str
    dnis: str
    queueId: str
    userId: str
    answeredUserId: str
    requestedRoutingSkillIds: list[str]
    disconnectType: str
    heldDurationMs: StrictInt
    wrapupCode: str
    wrapUpCode: str
    wrapupDurationMs: StrictInt
    agentId: str
    skillIds: list[str]
    callerNumber: str
    calleeNumber: str


class _Notification(TypedDict):
    topicName: NonEmpty
    eventBody: _Body


class _EventBridge(TypedDict):
    detail: _Notification


# The compiled pydantic-core validators: calling them directly skips TypeAdapter's per-call
# bookkeeping, an eighth of the validation's cost.
_ENVELOPE = TypeAdapter(_Envelope).validator
_NOTIFICATION = TypeAdapter(_Notification).validator
_EVENTBRIDGE = TypeAdapter(_EventBridge).validator


def fast_events(fmt: PayloadFormat, payload: Any) -> list[MicroEvent] | None:
    """Micro-events of a clean payload, or None when the tolerant path must decide."""
    try:
        if fmt == "envelope":
            return _envelope_events(_ENVELOPE.validate_python(payload))
        if fmt == "eventbridge":
            return _genesys_events(fmt, _EVENTBRIDGE.validate_python(payload)["detail"])
        return _genesys_events(fmt, _NOTIFICATION.validate_python(payload))
    except (ValidationError, TimestampError):
        return None


def _envelope_events(envelope: _Envelope) -> list[MicroEvent]:
    data = envelope["data"]
    created = to_epoch_ms(envelope["createdTimestamp"])
    conversation_id = data["id"]
    media = data.get("type")
    return [
        envelope_event(
            conversation_id,
            created=created,
            media=media,
            name=detail["name"],
            sequence=detail["sequence"],
            timestamp_ms=to_epoch_ms(detail["timestamp"]),
            data=detail.get("data") or {},
        )
        for detail in data["details"]
    ]


def _genesys_events(fmt: PayloadFormat, notification: _Notification) -> list[MicroEvent] | None:
    body = notification["eventBody"]
    event_time = body.get("eventTime")
    conversation_id = body.get("conversationId")
    if event_time is None or conversation_id is None or not MIN_MS <= event_time <= MAX_MS:
        return None
    return [genesys_event(fmt, notification["topicName"], conversation_id, event_time, body)]
