"""Ground truth: the record a conversation must end as, derived by docs/record-rules.md.

This is the simulator's own reading of the rules, written apart from `transform/` so that the two
can check each other. It folds the conversation's distinct micro-events, sorted by the rules'
total order, into a SPEC 4 record. Fields that depend on delivery timing and batching cannot be
predicted: `revision`, `first_seen_at` and `finalized_at` are null here, `duplicate_count` is
the number of duplicate copies delivered (an upper bound for the record's count) and
`late_event_count` the number of micro-events the simulator delivered late (informational).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from simulator.generate.model import ENVELOPE, MicroEvent
from simulator.timeutil import iso

SCHEMA_VERSION: Final = "1"

ENVELOPE_NAMES: Final = frozenset(
    {
        "conversation:state",
        "conversation:state:updated",
        "participant:added",
        "voice:call:connected",
        "chat:message",
        "email:message",
        "agent:wrapup",
    }
)
GENESYS_KINDS: Final = frozenset(
    {
        "customer.start",
        "customer.end",
        "flow.start",
        "flow.end",
        "flow.outcome",
        "acd.start",
        "acd.end",
        "user.start",
        "user.end",
        "acw",
        "wrapup",
        "outbound",
        "voicemail.start",
        "voicemail.end",
        "contact",
        "attributes",
    }
)

# Fields that count no matter which micro-event carries them (metadata binds late).
QUEUE_FIELDS: Final = ("queueId", "toQueueId")
AGENT_FIELDS: Final = ("agentId", "fromAgentId", "toAgentId", "userId", "answeredUserId")
SKILL_FIELDS: Final = ("skillIds", "requestedRoutingSkillIds")
CODE_FIELDS: Final = ("wrapUpCode", "wrapupCode")

# Record fields that depend on processing; a verifier checks them for consistency only.
PROCESSING_FIELDS: Final = (
    "revision",
    "duplicate_count",
    "late_event_count",
    "first_seen_at",
    "finalized_at",
)
RECORD_FIELDS: Final = (
    "schema_version",
    "conversation_id",
    "media_type",
    "direction",
    "status",
    "finalized_reason",
    "revision",
    "final_state",
    "started_at",
    "ended_at",
    "duration_seconds",
    "reported_duration_seconds",
    "hold_seconds",
    "hold_count",
    "transfers",
    "wrap_up_code",
    "wrap_up_seconds",
    "caller",
    "callee",
    "queue_ids",
    "agent_ids",
    "skill_ids",
    "message_count",
    "lifecycle",
    "event_count",
    "duplicate_count",
    "late_event_count",
    "unknown_events",
    "source_formats",
    "first_seen_at",
    "finalized_at",
)


def _lower(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def _text(value: Any) -> str | None:
    """A non-empty string value, else None."""
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def is_known(event: MicroEvent) -> bool:
    """Whether the action is in the vocabulary (names compare case-insensitively)."""
    action = event.action.lower()
    if event.is_envelope:
        return action in ENVELOPE_NAMES or action.endswith(":transferred")
    return action in GENESYS_KINDS


def in_order(events: Iterable[MicroEvent]) -> list[MicroEvent]:
    """Distinct micro-events (first copy of each identity wins) in the rules' total order."""
    distinct: dict[tuple[Any, ...], MicroEvent] = {}
    for event in events:
        distinct.setdefault(event.identity(), event)
    return sorted(distinct.values(), key=MicroEvent.sort_key)


def _states(events: Sequence[MicroEvent]) -> list[MicroEvent]:
    return [e for e in events if e.is_envelope and e.action.lower() == "conversation:state"]


def _envelope_end(events: Sequence[MicroEvent]) -> int | None:
    """Time of the ending disconnect if the last state event says `disconnected`."""
    states = _states(events)
    if states and _lower(states[-1].fields.get("status")) == "disconnected":
        return states[-1].time_ms
    return None


def _genesys_end(events: Sequence[MicroEvent]) -> int | None:
    """`eventTime` of the last `customer.end` once every `user.start` session has its end."""
    genesys = [e for e in events if not e.is_envelope]
    ends = [e for e in genesys if e.action.lower() == "customer.end"]
    if not ends:
        return None
    started = {_session(e) for e in genesys if e.action.lower() == "user.start"}
    finished = {_session(e) for e in genesys if e.action.lower() == "user.end"}
    if started - finished:
        return None
    return ends[-1].time_ms


def _session(event: MicroEvent) -> tuple[Any, Any]:
    return (event.fields.get("participantId"), event.fields.get("sessionId"))


def end_time(events: Iterable[MicroEvent]) -> int | None:
    """When the conversation ended (epoch ms), or None while it has not ended."""
    ordered = in_order(events)
    envelope_end = _envelope_end(ordered)
    return envelope_end if envelope_end is not None else _genesys_end(ordered)


def _hold_ms(events: Sequence[MicroEvent], ended_at: int | None) -> tuple[int, int]:
    """Envelope holds: (total ms, count) by the rules' state-transition definition."""
    states = _states(events)
    total = count = 0
    for i, state in enumerate(states):
        if _lower(state.fields.get("status")) != "onhold":
            continue
        if i > 0 and _lower(states[i - 1].fields.get("status")) == "onhold":
            continue  # still the same hold
        count += 1
        end = next(
            (s.time_ms for s in states[i + 1 :] if _lower(s.fields.get("status")) != "onhold"),
            ended_at,
        )
        if end is not None:
            total += end - state.time_ms
    return total, count


def _ids(events: Sequence[MicroEvent], names: Sequence[str]) -> list[str]:
    """Sorted distinct non-empty strings of `names` (a value may be a string or a list)."""
    found: set[str] = set()
    for event in events:
        fields = event.fields
        for name in names:
            value = fields.get(name)
            if isinstance(value, str):
                if value:
                    found.add(value)
            elif isinstance(value, list):
                found.update(v for v in value if isinstance(v, str) and v)
    return sorted(found)


def _first(events: Sequence[MicroEvent], envelope_field: str, genesys_field: str) -> str | None:
    for event in events:
        value = _text(event.fields.get(envelope_field if event.is_envelope else genesys_field))
        if value is not None:
            return value
    return None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def derive(
    conversation_id: str,
    events: Iterable[MicroEvent],
    *,
    duplicates_delivered: int = 0,
    late_delivered: int = 0,
) -> dict[str, Any]:
    """The final SPEC 4 record of a conversation whose distinct micro-events are `events`."""
    ordered = in_order(events)
    if not ordered:
        msg = f"conversation {conversation_id!r} has no micro-events to derive a record from"
        raise ValueError(msg)
    envelope = [e for e in ordered if e.is_envelope]
    genesys = [e for e in ordered if not e.is_envelope]
    envelope_end = _envelope_end(ordered)
    genesys_end = _genesys_end(ordered)
    ended_at = envelope_end if envelope_end is not None else genesys_end
    ended = ended_at is not None
    started_at = ordered[0].time_ms

    states = _states(ordered)
    if states:
        final_state = states[-1].fields.get("status")
    else:
        final_state = "disconnected" if genesys and ended else None

    hold_ms, hold_count = _hold_ms(ordered, ended_at)
    user_ends = [e for e in genesys if e.action.lower() == "user.end"]
    held = [_number(e.fields.get("heldDurationMs")) or 0 for e in user_ends]
    hold_total = (hold_ms + sum(held)) / 1000
    hold_count += sum(1 for h in held if h > 0)

    transfers = sum(1 for e in envelope if e.action.lower().endswith(":transferred"))
    transfers += sum(1 for e in user_ends if "transfer" in _lower(e.fields.get("disconnectType")))

    coded = [e for e in ordered if any(_text(e.fields.get(f)) for f in CODE_FIELDS)]
    wrap_up_code = None
    if coded:
        last = coded[-1]
        wrap_up_code = _text(last.fields.get("wrapUpCode")) or _text(last.fields.get("wrapupCode"))

    wrap_up_seconds = None
    if envelope and ended_at is not None and coded:
        delta = coded[-1].time_ms - ended_at
        wrap_up_seconds = delta / 1000 if delta >= 0 else None
    durations = [_number(e.fields.get("wrapupDurationMs")) for e in genesys]
    durations_present = [d for d in durations if d is not None]
    if durations_present:  # the Genesys rule wins when it gives a value
        wrap_up_seconds = durations_present[-1] / 1000

    reported = [
        _number(e.fields.get("duration"))
        for e in envelope
        if e.action.lower() == "conversation:state:updated"
    ]
    reported_present = [r for r in reported if r is not None]

    media = next((e.media for e in ordered if _text(e.media)), None)
    direction = next((d.lower() for e in ordered if (d := _text(e.fields.get("direction")))), None)
    return {
        "schema_version": SCHEMA_VERSION,
        "conversation_id": conversation_id,
        "media_type": media.lower() if media else None,
        "direction": direction,
        "status": "final" if ended else "partial",
        "finalized_reason": "ended" if ended else "idle-timeout",
        "revision": None,
        "final_state": final_state,
        "started_at": iso(started_at),
        "ended_at": iso(ended_at) if ended_at is not None else None,
        "duration_seconds": _seconds(ended_at - started_at) if ended_at is not None else None,
        "reported_duration_seconds": round(reported_present[-1], 3) if reported_present else None,
        "hold_seconds": round(hold_total, 3),
        "hold_count": hold_count,
        "transfers": transfers,
        "wrap_up_code": wrap_up_code,
        "wrap_up_seconds": wrap_up_seconds,
        "caller": _first(ordered, "callerNumber", "ani"),
        "callee": _first(ordered, "calleeNumber", "dnis"),
        "queue_ids": _ids(ordered, QUEUE_FIELDS),
        "agent_ids": _ids(ordered, AGENT_FIELDS),
        "skill_ids": _ids(ordered, SKILL_FIELDS),
        "message_count": sum(
            1 for e in ordered if e.action.lower() in ("chat:message", "email:message")
        ),
        "lifecycle": [_lifecycle(e) for e in ordered],
        "event_count": len(ordered),
        "duplicate_count": duplicates_delivered,
        "late_event_count": late_delivered,
        "unknown_events": sorted({e.action for e in ordered if not is_known(e)}),
        "source_formats": sorted({e.fmt for e in ordered}),
        "first_seen_at": None,
        "finalized_at": None,
    }


def kept(media_type: str | None, media_types: Sequence[str]) -> bool:
    """Whether the pipeline writes a conversation whose record states `media_type`, when its
    INGEST_MEDIA_TYPES is `media_types` (docs/record-rules.md, "The media-type filter"): all
    without a filter; with one, a listed type only (not an unknown one)."""
    if not media_types:
        return True
    return media_type is not None and media_type.lower() in {m.lower() for m in media_types}


def _lifecycle(event: MicroEvent) -> dict[str, Any]:
    second: int | str = (event.sequence or 0) if event.fmt == ENVELOPE else event.action
    return {
        "order": [iso(event.order_ms), second],
        "timestamp": iso(event.time_ms),
        "action": event.action,
    }
