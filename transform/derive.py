"""Derive the conversation record (SPEC 4, docs/record-rules.md) from distinct micro-events.

The record is a left fold over the micro-events sorted by their total order, with one small
step function per kind of micro-event (`STEPS`). Because the input is a set sorted by a total
order, any arrival order and any duplication derive the same record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from schemas.micro_event import MicroEvent
from schemas.record import RECORD_SCHEMA_VERSION
from schemas.timestamps import iso_ms
from transform.progress import Progress
from transform.vocabulary import (
    MESSAGE_NAMES,
    STATE_ONHOLD,
    TRANSFER_SUFFIX,
    is_known_action,
)


@dataclass(frozen=True, slots=True)
class RecordMeta:
    """The processing facts a record carries besides what its micro-events say."""

    revision: int
    duplicate_count: int
    late_event_count: int
    first_seen_at_ms: int
    finalized_at_ms: int


# Fields that depend on processing, not on what happened: ignored when deciding whether a
# late micro-event changed the record enough to write a new revision.
PROCESSING_FIELDS = frozenset({"revision", "duplicate_count", "late_event_count", "finalized_at"})


@dataclass(slots=True)
class _Fold:
    """The accumulator of one derivation; never escapes `derive`."""

    media: str | None = None
    direction: str | None = None
    caller: str | None = None
    callee: str | None = None
    final_state: str | None = None
    previous_state: str | None = None
    hold_started_ms: int | None = None
    envelope_hold_ms: int = 0
    envelope_hold_count: int = 0
    genesys_hold_ms: int = 0
    genesys_hold_count: int = 0
    transfers: int = 0
    reported_duration: float | None = None
    wrap_up_code: str | None = None
    last_wrap_up_code_ms: int | None = None
    last_wrapup_ms: int | None = None
    message_count: int = 0
    queue_ids: set[str] = field(default_factory=set)
    agent_ids: set[str] = field(default_factory=set)
    skill_ids: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    formats: set[str] = field(default_factory=set)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    order_ms: int | None = None
    order_iso: str = ""
    """The latest order time rendered, and its text: an envelope's events share theirs."""


Step = Callable[[_Fold, MicroEvent], None]


def _state(fold: _Fold, event: MicroEvent) -> None:
    if event.status is None:
        return
    status = event.status.lower()
    fold.final_state = event.status
    in_hold = fold.hold_started_ms is not None
    if status == STATE_ONHOLD and fold.previous_state != STATE_ONHOLD:
        fold.hold_started_ms = event.timestamp_ms
        fold.envelope_hold_count += 1
    elif status != STATE_ONHOLD and in_hold:
        assert fold.hold_started_ms is not None
        fold.envelope_hold_ms += event.timestamp_ms - fold.hold_started_ms
        fold.hold_started_ms = None
    fold.previous_state = status


def _state_updated(fold: _Fold, event: MicroEvent) -> None:
    if event.duration_s is not None:
        fold.reported_duration = round(event.duration_s, 3)


def _message(fold: _Fold, event: MicroEvent) -> None:
    fold.message_count += 1


def _transferred(fold: _Fold, event: MicroEvent) -> None:
    fold.transfers += 1


def _user_end(fold: _Fold, event: MicroEvent) -> None:
    if event.held_ms is not None:
        fold.genesys_hold_ms += event.held_ms
        if event.held_ms > 0:
            fold.genesys_hold_count += 1
    if event.disconnect_type and "transfer" in event.disconnect_type.lower():
        fold.transfers += 1


def _nothing(fold: _Fold, event: MicroEvent) -> None:
    return None


STEPS: dict[str, Step] = {
    "conversation:state": _state,
    "conversation:state:updated": _state_updated,
    **dict.fromkeys(MESSAGE_NAMES, _message),
    "user.end": _user_end,
}


@functools.lru_cache(maxsize=1024)
def _classify(action: str, envelope: bool) -> tuple[Step, bool]:
    """The step for an action, and whether the vocabulary knows it (few distinct actions)."""
    lowered = action.lower()
    step = STEPS.get(lowered)
    if step is None:
        step = _transferred if lowered.endswith(TRANSFER_SUFFIX) else _nothing
    return step, is_known_action(action, envelope=envelope)


def _common(fold: _Fold, event: MicroEvent, *, known: bool) -> None:
    """What every micro-event contributes, whatever its name (metadata binds late)."""
    fold.media = fold.media or event.media
    fold.direction = fold.direction or event.direction
    fold.caller = fold.caller or event.caller
    fold.callee = fold.callee or event.callee
    if event.queue_ids:
        fold.queue_ids.update(event.queue_ids)
    if event.agent_ids:
        fold.agent_ids.update(event.agent_ids)
    if event.skill_ids:
        fold.skill_ids.update(event.skill_ids)
    envelope = event.source_format == "envelope"
    if event.wrap_up_code:
        fold.wrap_up_code = event.wrap_up_code
        if envelope:
            fold.last_wrap_up_code_ms = event.timestamp_ms
    if event.wrapup_ms is not None:
        fold.last_wrapup_ms = event.wrapup_ms
    fold.formats.add(event.source_format)
    if not known:
        fold.unknown.add(event.action)
    second: int | str = (
        event.sequence if envelope and event.sequence is not None else (event.kind or "")
    )
    order_ms = event.order_time_ms
    if order_ms != fold.order_ms:
        fold.order_ms, fold.order_iso = order_ms, iso_ms(order_ms)
    timestamp_ms = event.timestamp_ms  # a Genesys event's is its order time
    fold.lifecycle.append(
        {
            "order": [fold.order_iso, second],
            "timestamp": fold.order_iso if timestamp_ms == order_ms else iso_ms(timestamp_ms),
            "action": event.action,
        }
    )


_SORT_KEY = attrgetter("sort_key")


def derive(
    events: Iterable[MicroEvent], meta: RecordMeta, progress: Progress | None = None
) -> dict[str, Any]:
    """The record for a conversation's distinct micro-events (at least one).

    `progress` is these events' `Progress` when the caller keeps one, so it is not folded twice.
    """
    ordered = sorted(events, key=_SORT_KEY)
    if not ordered:
        raise ValueError("a record needs at least one micro-event")
    if progress is None:
        progress = Progress()
        for event in ordered:
            progress.add(event)
    fold = _Fold()
    for event in ordered:
        step, known = _classify(event.action, event.source_format == "envelope")
        _common(fold, event, known=known)
        step(fold, event)

    ended_at = progress.ended_at_ms
    started_at = ordered[0].timestamp_ms
    if fold.hold_started_ms is not None and ended_at is not None:
        fold.envelope_hold_ms += ended_at - fold.hold_started_ms
    if progress.genesys_ended and not progress.envelope_ended and fold.final_state is None:
        fold.final_state = "disconnected"

    wrap_up_seconds: float | None = None
    if fold.last_wrapup_ms is not None:
        wrap_up_seconds = fold.last_wrapup_ms / 1000
    elif fold.last_wrap_up_code_ms is not None and ended_at is not None:
        gap = fold.last_wrap_up_code_ms - ended_at
        wrap_up_seconds = gap / 1000 if gap >= 0 else None

    return {
        "schema_version": RECORD_SCHEMA_VERSION,
        "conversation_id": ordered[0].conversation_id,
        "media_type": fold.media,
        "direction": fold.direction.lower() if fold.direction else None,
        "status": "final" if progress.ended else "partial",
        "finalized_reason": "ended" if progress.ended else "idle-timeout",
        "revision": meta.revision,
        "final_state": fold.final_state,
        "started_at": iso_ms(started_at),
        "ended_at": iso_ms(ended_at) if ended_at is not None else None,
        "duration_seconds": (ended_at - started_at) / 1000 if ended_at is not None else None,
        "reported_duration_seconds": fold.reported_duration,
        "hold_seconds": (fold.envelope_hold_ms + fold.genesys_hold_ms) / 1000,
        "hold_count": fold.envelope_hold_count + fold.genesys_hold_count,
        "transfers": fold.transfers,
        "wrap_up_code": fold.wrap_up_code,
        "wrap_up_seconds": wrap_up_seconds,
        "caller": fold.caller,
        "callee": fold.callee,
        "queue_ids": sorted(fold.queue_ids),
        "agent_ids": sorted(fold.agent_ids),
        "skill_ids": sorted(fold.skill_ids),
        "message_count": fold.message_count,
        "lifecycle": fold.lifecycle,
        "event_count": len(ordered),
        "duplicate_count": meta.duplicate_count,
        "late_event_count": meta.late_event_count,
        "unknown_events": sorted(fold.unknown),
        "source_formats": sorted(fold.formats),
        "first_seen_at": iso_ms(meta.first_seen_at_ms),
        "finalized_at": iso_ms(meta.finalized_at_ms),
    }
