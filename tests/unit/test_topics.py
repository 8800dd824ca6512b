"""Strict topics and heartbeats in the one delivery parser, and through the batch service."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from tests.unit.builders import T0, eventbridge, notification
from transform.normalize import RejectReason, normalize_payload, parse_delivery
from transform.service import Delivery, TransformService

HEARTBEAT = {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}


def foreign(topic: str, conversation_id: str = "c1", **body: Any) -> dict[str, Any]:
    """A Genesys-shaped payload of another topic (what a relay subscribed too widely sends)."""
    note = notification(conversation_id, "customer.start", 0, **body)
    note["topicName"] = topic
    return note


FOREIGN_TOPICS = [
    "v2.conversations.c1.transcription",
    "v2.users.u1.presence",
    "v2.detail.events.conversatio.c1.customer.start",  # one letter short of the prefix
    "V2.DETAIL.EVENTS.CONVERSATION.c1.customer.start",  # topics are case-sensitive
    "v2.system.socket_closing",
    "5",
]


@pytest.mark.parametrize("topic", FOREIGN_TOPICS)
@pytest.mark.parametrize("wrap", ["notification", "eventbridge"])
def test_a_topic_that_is_not_a_detail_topic_is_unsupported(topic: str, wrap: str) -> None:
    payload: dict[str, Any] = foreign(topic)
    if wrap == "eventbridge":
        payload = eventbridge(payload)
    events, rejection = normalize_payload(payload)
    assert events == []
    assert rejection is not None and rejection.reason is RejectReason.UNSUPPORTED_TOPIC
    assert repr(topic[:120]) in rejection.error and "detail topic" in rejection.error
    assert orjson.loads(rejection.raw) == payload


def test_the_topic_decides_before_the_body_is_validated() -> None:
    # A transcription event names its conversation elsewhere: it is unsupported, not id-less.
    payload = foreign("v2.conversations.c1.transcription")
    del payload["eventBody"]["conversationId"]
    _, rejection = normalize_payload(payload)
    assert rejection is not None and rejection.reason == "unsupported-topic"


def test_a_numeric_topic_is_read_as_text_like_every_other_text_field() -> None:
    _, rejection = normalize_payload(foreign(5))  # type: ignore[arg-type]
    assert rejection is not None and rejection.reason == "unsupported-topic"


@pytest.mark.parametrize("topic", [None, "", {"a": 1}])
def test_a_missing_topic_is_left_to_validation(topic: object) -> None:
    payload = foreign("x")
    payload["topicName"] = topic
    _, rejection = normalize_payload(payload)
    assert rejection is not None and rejection.reason == "invalid-payload"


def test_detail_topics_still_pass_and_keep_their_kind() -> None:
    events, rejection = normalize_payload(notification("c1", "voicemail.start", 0))
    assert rejection is None and [e.kind for e in events] == ["voicemail.start"]


def test_a_heartbeat_is_neither_an_event_nor_a_rejection_and_is_counted() -> None:
    assert normalize_payload(HEARTBEAT) == ([], None)
    parsed = parse_delivery(orjson.dumps([HEARTBEAT, notification("c1", "acw", 0), HEARTBEAT]))
    assert (parsed.heartbeats, parsed.payload_count, len(parsed.events)) == (2, 3, 1)
    assert parsed.rejections == []
    # Anything else on the keep-alive's topic is still a heartbeat: the topic is the channel's.
    pong = {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}
    assert parse_delivery(orjson.dumps(pong)).heartbeats == 1


def test_the_transform_dead_letters_unsupported_topics_and_skips_heartbeats() -> None:
    records, letters = InMemoryRecordSink(), InMemoryDeadLetterSink()
    service = TransformService(InMemoryStateStore(), records, letters, ManualClock(T0))
    bodies = [
        foreign("v2.conversations.c1.transcription"),
        HEARTBEAT,
        [notification("c2", "customer.start", 0, mediaType="VOICE"), HEARTBEAT],
    ]
    deliveries = [Delivery(orjson.dumps(b), source={"line": n}) for n, b in enumerate(bodies, 1)]
    counts = service.process(deliveries)
    assert (counts.heartbeats, counts.dead_letters, counts.applied) == (2, 1, 1)
    [letter] = letters.letters.values()
    assert (letter.reason, letter.source.line) == ("unsupported-topic", 1)
    assert orjson.loads(letter.raw) == bodies[0]
