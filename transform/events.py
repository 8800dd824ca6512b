"""Building canonical micro-events from validated payload parts.

Both the fast path (`transform.fastpath`, msgspec structs) and the tolerant path
(`transform.normalize`, pydantic models dumped to dicts) end here, in `envelope_micro_event`
and `genesys_micro_event`, so the two cannot disagree on what a micro-event is. Each takes the
fields as plain values (None when absent) and builds the tuple without Python keyword binding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from schemas.micro_event import MicroEvent
from schemas.wire import TOPIC_PREFIX, PayloadFormat
from transform.vocabulary import GENESYS_KINDS_LONGEST_FIRST

_new = tuple.__new__
_STATE = "conversation:state"
_STATE_UPDATED = "conversation:state:updated"


def envelope_micro_event(  # noqa: PLR0917 - positional: the hot path binds no keywords
    conversation_id: str,
    created: int,
    media: str | None,
    name: str,
    sequence: int,
    timestamp_ms: int,
    direction: str | None,
    status: str | None,
    duration: float | None,
    caller: str | None,
    callee: str | None,
    queue_ids: tuple[str, ...],
    agent_ids: tuple[str, ...],
    skill_ids: tuple[str, ...],
    wrap_up_code: str | None,
) -> MicroEvent:
    """One envelope micro-event; `media` already lower-cased, id tuples without empties."""
    lowered = name.lower()
    return _new(
        MicroEvent,
        (
            conversation_id,
            "envelope",
            f"e|{created}|{sequence}",
            created,
            sequence,
            None,
            timestamp_ms,
            name,
            media,
            direction or None,
            (status or None) if lowered == _STATE else None,
            duration if lowered == _STATE_UPDATED else None,
            caller or None,
            callee or None,
            queue_ids,
            agent_ids,
            skill_ids,
            wrap_up_code,
            None,
            None,
            None,
            None,
            None,
        ),
    )


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
    """One envelope micro-event from a detail's `data` as a mapping (the tolerant path)."""
    get = data.get
    return envelope_micro_event(
        conversation_id,
        created,
        media.lower() if media else None,
        name,
        sequence,
        timestamp_ms,
        get("direction"),
        get("status"),
        get("duration"),
        get("callerNumber"),
        get("calleeNumber"),
        present(get("queueId"), get("toQueueId")),
        present(get("agentId"), get("fromAgentId"), get("toAgentId")),
        present(*(get("skillIds") or ())),
        get("wrapUpCode") or get("wrapupCode") or None,
    )


def genesys_micro_event(  # noqa: PLR0917 - positional: the hot path binds no keywords
    fmt: PayloadFormat,
    topic: str,
    conversation_id: str,
    event_time: int,
    participant: str | None,
    session: str | None,
    media: str | None,
    direction: str | None,
    caller: str | None,
    callee: str | None,
    queue_ids: tuple[str, ...],
    agent_ids: tuple[str, ...],
    skill_ids: tuple[str, ...],
    wrap_up_code: str | None,
    held_ms: int | None,
    wrapup_ms: int | None,
    disconnect_type: str | None,
) -> MicroEvent:
    """One Genesys micro-event (notification or EventBridge) from its fields."""
    kind = topic_kind(topic, conversation_id)
    participant = participant or None
    session = session or None
    identity = orjson.dumps(["g", kind, participant, session, event_time]).decode()
    return _new(
        MicroEvent,
        (
            conversation_id,
            fmt,
            identity,
            event_time,
            None,
            kind,
            event_time,
            kind,
            media.lower() if media else None,
            direction or None,
            None,
            None,
            caller or None,
            callee or None,
            queue_ids,
            agent_ids,
            skill_ids,
            wrap_up_code,
            held_ms,
            wrapup_ms,
            disconnect_type or None,
            participant,
            session,
        ),
    )


def genesys_event(
    fmt: PayloadFormat, topic: str, conversation_id: str, event_time: int, body: Mapping[str, Any]
) -> MicroEvent:
    """One Genesys micro-event from its event body as a mapping (the tolerant path)."""
    get = body.get
    return genesys_micro_event(
        fmt,
        topic,
        conversation_id,
        event_time,
        get("participantId"),
        get("sessionId"),
        get("mediaType"),
        get("direction"),
        get("ani") or get("callerNumber"),
        get("dnis") or get("calleeNumber"),
        present(get("queueId")),
        present(get("userId"), get("answeredUserId"), get("agentId")),
        present(*(get("requestedRoutingSkillIds") or ()), *(get("skillIds") or ())),
        get("wrapupCode") or get("wrapUpCode") or None,
        get("heldDurationMs"),
        get("wrapupDurationMs"),
        get("disconnectType"),
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


def present(*values: str | None) -> tuple[str, ...]:
    """The non-empty values, in order."""
    return tuple(filter(None, values))  # filter, not a comprehension: no frame per call


def present_all(values: Sequence[str] | None) -> tuple[str, ...]:
    """The non-empty values of a list (or nothing)."""
    return tuple(filter(None, values)) if values else ()
