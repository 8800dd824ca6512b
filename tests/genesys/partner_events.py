"""Genesys conversation events as EventBridge hands them to a rule on the partner bus."""

from __future__ import annotations

from typing import Any

from ops.genesys import plan as planning
from schemas.wire import TOPIC_PREFIX

ORG = "6f0e4a43-3d9b-4a55-8f0e-2b7f0c1d9a10"
SOURCE = planning.partner_event_source_name(ORG, planning.DEFAULT_SUFFIX)
CONVERSATION = "0b5c5f2e-8a4e-4f0f-9c59-6d2a9f0b7e31"


def partner_event(
    *,
    topic: str = f"{TOPIC_PREFIX}{{id}}.acd.start",
    source: str = SOURCE,
    media: str | None = "VOICE",
) -> dict[str, Any]:
    """An event of `topic` (its `{id}` filled with CONVERSATION) on the Genesys partner bus."""
    body: dict[str, Any] = {
        "eventTime": 1772359200000,
        "conversationId": CONVERSATION,
        "participantId": "8a2e5e0c-1c4b-4d3f-9a61-0f5e1b7d2c44",
        "sessionId": "3c9d1f7a-6b2e-4e8a-b5d0-7f1a2c3e4d55",
        "direction": "INBOUND",
        "queueId": "b1d0c9e8-2f3a-4b5c-8d7e-6f5a4b3c2d1e",
    }
    if media is not None:
        body["mediaType"] = media
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": topic,
        "source": source,
        "account": "123456789012",
        "time": "2026-03-01T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "topicName": topic.replace("{id}", CONVERSATION),
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": "f3b5c8e1-2a4d-4b6f-9c8e-1d2f3a4b5c6d"},
            "timestamp": "2026-03-01T10:00:00.123Z",
        },
    }
