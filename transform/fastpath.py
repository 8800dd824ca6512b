"""The fast path of normalization: one native msgspec pass per payload for clean input.

The payload as the one delivery parser decoded it (`transform.normalize.decode_delivery`,
orjson) is converted by msgspec into the structs below, in C, and each detail becomes a
micro-event straight from the struct's attributes. The structs accept only the clean shape
(strings where strings belong, JSON integers within 64 bits for sequence numbers and epoch
times, lists of strings); anything else — numbers as strings, wrong types, missing fields —
makes the fast path give up and the tolerant models in `schemas.wire` decide, so drift costs
speed, never correctness (`tests/unit/test_fastpath.py` holds the two paths equal). Timestamps
go through the same function on both paths. Measured against pydantic-core schemas doing the
same job: BENCHMARKS.md (P1).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from schemas.micro_event import MicroEvent
from schemas.timestamps import MAX_MS, MIN_MS, TimestampError, to_epoch_ms
from schemas.wire import INT64_MAX, INT64_MIN, PayloadFormat
from transform.events import envelope_micro_event, genesys_micro_event, present, present_all

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]


class _DetailData(msgspec.Struct, gc=False):
    status: str | None = None
    duration: float | None = None
    agentId: str | None = None
    queueId: str | None = None
    skillIds: list[str] | None = None
    wrapUpCode: str | None = None
    wrapupCode: str | None = None
    callerNumber: str | None = None
    calleeNumber: str | None = None
    direction: str | None = None
    fromAgentId: str | None = None
    toAgentId: str | None = None
    toQueueId: str | None = None


_NO_DATA = _DetailData()


class _Detail(msgspec.Struct, gc=False):
    name: NonEmpty
    sequence: Int64
    timestamp: str
    data: _DetailData | None = None


class _EnvelopeData(msgspec.Struct, gc=False):
    id: NonEmpty
    details: list[_Detail]
    type: str | None = None


class _Envelope(msgspec.Struct, gc=False):
    createdTimestamp: str
    data: _EnvelopeData


class _Body(msgspec.Struct, gc=False):
    eventTime: Int64
    conversationId: NonEmpty
    participantId: str | None = None
    sessionId: str | None = None
    mediaType: str | None = None
    direction: str | None = None
    ani: str | None = None
    dnis: str | None = None
    queueId: str | None = None
    userId: str | None = None
    answeredUserId: str | None = None
    requestedRoutingSkillIds: list[str] | None = None
    disconnectType: str | None = None
    heldDurationMs: Int64 | None = None
    wrapupCode: str | None = None
    wrapUpCode: str | None = None
    wrapupDurationMs: Int64 | None = None
    agentId: str | None = None
    skillIds: list[str] | None = None
    callerNumber: str | None = None
    calleeNumber: str | None = None


class _Notification(msgspec.Struct, gc=False):
    topicName: NonEmpty
    eventBody: _Body


class _EventBridge(msgspec.Struct, gc=False):
    detail: _Notification


_convert = msgspec.convert
_INVALID = (msgspec.ValidationError, TimestampError)


def fast_events(fmt: PayloadFormat, payload: Any) -> list[MicroEvent] | None:
    """Micro-events of a clean payload, or None when the tolerant path must decide."""
    try:
        if fmt == "envelope":
            return _envelope_events(_convert(payload, _Envelope))
        if fmt == "eventbridge":
            return _genesys_events(fmt, _convert(payload, _EventBridge).detail)
        return _genesys_events(fmt, _convert(payload, _Notification))
    except _INVALID:
        return None


def _envelope_events(envelope: _Envelope) -> list[MicroEvent]:
    data = envelope.data
    created = to_epoch_ms(envelope.createdTimestamp)
    conversation_id = data.id
    media = data.type.lower() if data.type else None
    events: list[MicroEvent] = []
    for detail in data.details:
        x = detail.data or _NO_DATA
        events.append(
            envelope_micro_event(
                conversation_id,
                created,
                media,
                detail.name,
                detail.sequence,
                to_epoch_ms(detail.timestamp),
                x.direction,
                x.status,
                x.duration,
                x.callerNumber,
                x.calleeNumber,
                present(x.queueId, x.toQueueId),
                present(x.agentId, x.fromAgentId, x.toAgentId),
                present_all(x.skillIds),
                x.wrapUpCode or x.wrapupCode or None,
            )
        )
    return events


def _genesys_events(fmt: PayloadFormat, notification: _Notification) -> list[MicroEvent] | None:
    body = notification.eventBody
    event_time = body.eventTime
    if not MIN_MS <= event_time <= MAX_MS:
        return None
    skills = (body.requestedRoutingSkillIds or []) + (body.skillIds or [])
    return [
        genesys_micro_event(
            fmt,
            notification.topicName,
            body.conversationId,
            event_time,
            body.participantId,
            body.sessionId,
            body.mediaType,
            body.direction,
            body.ani or body.callerNumber,
            body.dnis or body.calleeNumber,
            present(body.queueId),
            present(body.userId, body.answeredUserId, body.agentId),
            present_all(skills),
            body.wrapupCode or body.wrapUpCode or None,
            body.heldDurationMs,
            body.wrapupDurationMs,
            body.disconnectType,
        )
    ]
