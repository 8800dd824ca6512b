"""Small builders for payloads in the three accepted formats, for hand-made test cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.timestamps import datetime_to_ms, iso_ms

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    """ISO-8601 with milliseconds and Z."""
    return iso_ms(datetime_to_ms(moment))


def ms(moment: datetime) -> int:
    """Epoch milliseconds."""
    return datetime_to_ms(moment)


@dataclass
class Step:
    """One envelope micro-event: name, seconds after T0, data."""

    name: str
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)


def envelope(
    conversation_id: str, created_seconds: float, steps: list[Step], media: str = "voice"
) -> dict[str, Any]:
    """An envelope whose details are numbered 1.. in the order given."""
    return {
        "id": f"env-{conversation_id}-{created_seconds}",
        "type": "v2.detail.events.conversation",
        "createdTimestamp": iso(at(created_seconds)),
        "data": {
            "id": conversation_id,
            "type": media,
            "createdTimestamp": iso(T0),
            "updatedTimestamp": iso(at(created_seconds)),
            "details": [
                {
                    "name": step.name,
                    "type": "event",
                    "data": step.data,
                    "sequence": number,
                    "timestamp": iso(at(step.seconds)),
                }
                for number, step in enumerate(steps, start=1)
            ],
        },
        "metadata": {"origin": "test"},
    }


def notification(conversation_id: str, kind: str, seconds: float, **body: Any) -> dict[str, Any]:
    """A Genesys notification payload."""
    return {
        "topicName": f"v2.detail.events.conversation.{conversation_id}.{kind}",
        "version": "2",
        "eventBody": {"eventTime": ms(at(seconds)), "conversationId": conversation_id, **body},
        "metadata": {"CorrelationId": "test"},
    }


def eventbridge(note: dict[str, Any]) -> dict[str, Any]:
    """Wrap a notification the way the EventBridge relay delivers it."""
    return {
        "detail-type": "v2.detail.events.conversation",
        "source": "aws.partner/genesys.com/cloud/test",
        "id": "eb-test",
        "time": "2026-11-02T09:00:00Z",
        "detail": {**note, "timestamp": "2026-11-02T09:00:00Z"},
    }


def line(payload: object) -> bytes:
    """One JSONL delivery."""
    return orjson.dumps(payload)
