"""Rendering payloads in the wire formats of SPEC 2: envelope, eventbridge, notification."""

from __future__ import annotations

from typing import Any

import orjson

from simulator.generate.model import (
    ENVELOPE,
    ENVELOPE_TYPE,
    EVENTBRIDGE,
    TOPIC_PREFIX,
    MicroEvent,
    Payload,
)
from simulator.timeutil import iso

Json = dict[str, Any]

EVENTBRIDGE_ACCOUNT = "123456789012"
EVENTBRIDGE_REGION = "eu-west-1"


def dumps(value: Any) -> bytes:
    """Compact JSON with sorted keys: the one serialization of everything the simulator writes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def topic(conversation_id: str, kind: str) -> str:
    return f"{TOPIC_PREFIX}{conversation_id}.{kind}"


def detail(event: MicroEvent) -> Json:
    """One element of an envelope's `data.details`."""
    return {
        "name": event.action,
        "type": event.action.partition(":")[0].lower(),
        "data": dict(event.fields),
        "sequence": event.sequence,
        "timestamp": iso(event.time_ms),
    }


def envelope(payload: Payload, org_id: str, details: list[Json] | None = None) -> Json:
    """The design's webhook envelope; `details` overrides the rendered ones (re-sent subsets)."""
    return {
        "id": payload.payload_id,
        "type": ENVELOPE_TYPE,
        "createdTimestamp": iso(payload.created_ms),
        "data": {
            "id": payload.conversation_id,
            "type": payload.media,
            "createdTimestamp": iso(payload.conversation_started_ms),
            "updatedTimestamp": iso(payload.created_ms),
            "details": details if details is not None else [detail(e) for e in payload.events],
        },
        "metadata": {
            "correlationId": payload.correlation_id,
            "orgId": org_id,
            "source": "genesys-cloud-webhook",
        },
    }


def notification(payload: Payload) -> Json:
    """A Genesys notification: `topicName`, `version`, a flat `eventBody`, `metadata`."""
    event = payload.events[0]
    body = dict(event.fields)
    body["conversationId"] = payload.conversation_id
    body["eventTime"] = event.time_ms
    if event.media is not None:  # Genesys names none on some kinds (`attributes`)
        body["mediaType"] = event.media
    return {
        "topicName": topic(payload.conversation_id, event.action),
        "version": "2",
        "eventBody": body,
        "metadata": {"CorrelationId": payload.correlation_id},
    }


def subscribed_topic(kind: str) -> str:
    """The topic as subscribed, `{id}` literal: what Genesys puts in `detail-type`."""
    return topic("{id}", kind)


def eventbridge(payload: Payload, org_id: str) -> Json:
    """The notification as Amazon EventBridge delivers it from the Genesys partner source.

    `detail-type` is the subscribed topic with `{id}` literal (captures of the integration's
    events show `v2.detail.events.conversation.{id}.acd.start`); `detail.topicName` has the id.
    """
    inner = notification(payload)
    return wrap_eventbridge(
        inner,
        subscribed_topic(payload.events[0].action),
        event_id=payload.payload_id,
        created_ms=payload.created_ms,
        org_id=org_id,
    )


def wrap_eventbridge(
    inner: Json, detail_type: str, *, event_id: str, created_ms: int, org_id: str
) -> Json:
    """A notification inside the EventBridge envelope of the Genesys partner event source."""
    inner["timestamp"] = iso(created_ms)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": f"aws.partner/genesys.com/cloud/{org_id}/conversation-events",
        "account": EVENTBRIDGE_ACCOUNT,
        "time": iso(created_ms)[:19] + "Z",
        "region": EVENTBRIDGE_REGION,
        "resources": [],
        "detail": inner,
    }


def render(payload: Payload, org_id: str) -> Json:
    """The payload as its source would send it, before any drift."""
    if payload.fmt == ENVELOPE:
        return envelope(payload, org_id)
    if payload.fmt == EVENTBRIDGE:
        return eventbridge(payload, org_id)
    return notification(payload)
