"""Building canonical micro-events from validated payload parts.

Both the fast path (`transform.fastpath`, plain dicts from a strict schema) and the tolerant
path (`transform.normalize`, pydantic models dumped to dicts) end here, so the two cannot
disagree on what a micro-event is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from schemas.micro_event import MicroEvent
from schemas.wire import TOPIC_PREFIX, PayloadFormat
from transform.vocabulary import GENESYS_KINDS_LONGEST_FIRST


def envelope_event(
    conversation_id: str,
    *,
    created: int,
    media: str | None,
    name: str,
    sequence: int,
    timestamp_ms: int,
    data: Mapping[str, Any],
) -> MicroEvent:
    """One envelope micro-event from its validated parts (fast or tolerant path alike)."""
    get = data.get
    lowered = name.lower()
    return MicroEvent(
        conversation_id,
        "envelope",
        f"e|{created}|{sequence}",
        created,
        sequence,
        None,
        timestamp_ms,
        name,
        media.lower() if media else None,
        get("direction") or None,
        (get("status") or None) if lowered == "conversation:state" else None,
        get("duration") if lowered == "conversation:state:updated" else None,
        get("callerNumber") or None,
        get("calleeNumber") or None,
        _present(get("queueId"), get("toQueueId")),
        _present(get("agentId"), get("fromAgentId"), get("toAgentId")),
        _present(*(get("skillIds") or ())),
        get("wrapUpCode") or get("wrapupCode") or None,
    )


def genesys_event(
    fmt: PayloadFormat, topic: str, conversation_id: str, event_time: int, body: Mapping[str, Any]
) -> MicroEvent:
    """One Genesys micro-event from its validated parts (fast or tolerant path alike)."""
    get = body.get
    kind = topic_kind(topic, conversation_id)
    participant = get("participantId") or None
    session = get("sessionId") or None
    identity = orjson.dumps(["g", kind, participant, session, event_time]).decode()
    media = get("mediaType")
    return MicroEvent(
        conversation_id,
        fmt,
        identity,
        event_time,
        None,
        kind,
        event_time,
        kind,
        media.lower() if media else None,
        get("direction") or None,
        None,
        None,
        get("ani") or get("callerNumber") or None,
        get("dnis") or get("calleeNumber") or None,
        _present(get("queueId")),
        _present(get("userId"), get("answeredUserId"), get("agentId")),
        _present(*(get("requestedRoutingSkillIds") or ()), *(get("skillIds") or ())),
        get("wrapupCode") or get("wrapUpCode") or None,
        get("heldDurationMs"),
        get("wrapupDurationMs"),
        get("disconnectType") or None,
        participant,
        session,
    )


def topic_kind(topic: str, conversation_id: str) -> str:
    """The kind of a `v2.detail.events.conversation.{id}.{kind}` topic."""
    exact = f"{TOPIC_PREFIX}{conversation_id}."
    if topic.startswith(exact) and len(topic) > len(exact):
        return topic[len(exact) :]
    lowered = topic.lower()
    for kind in GENESYS_KINDS_LONGEST_FIRST:
        if lowered.endswith("." + kind):
            return topic[len(topic) - len(kind) :]
    return topic.rsplit(".", 1)[-1]


def _present(*values: str | None) -> tuple[str, ...]:
    return tuple(filter(None, values))  # filter, not a comprehension: no frame per call
