"""One conversation as the consumer keeps it: decoded state, storage facts, stored record.

Read through the adapters' readers (`adapters.state_reader`, `adapters.record_reader`): the
state store is read-only, uncached and counts apart, so inspecting never touches the app's
figures. What is here only shapes what was read for a table or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.record_reader import RecordReader
from adapters.state_reader import StateReader
from ops.errors import NotFound
from schemas.timestamps import iso_ms
from transform.media import ALL_MEDIA, MediaFilter, conversation_media
from transform.state import ConversationState, Timing


@dataclass(frozen=True, slots=True)
class Inspected:
    """Everything stored about one conversation."""

    state: ConversationState
    etag: str
    row: dict[str, Any]
    """Where and how it is stored: shard, row key, deadline, slot, spill blob, sizes."""
    record: dict[str, Any] | None
    record_metadata: dict[str, str]

    @property
    def record_revision(self) -> int | None:
        """The revision of the stored record, if any."""
        return None if self.record is None else int(self.record.get("revision", 0))


def phase(state: ConversationState, media: MediaFilter = ALL_MEDIA) -> str:
    """Where the conversation stands: open, ended (in grace), set aside by the media filter,
    finalized, or owed a write."""
    if state.record_meta is None:
        if state.filtered_at_ms is not None:
            kind = conversation_media(state.events.values()) or "unknown"
            return f"set aside by the media filter (media type {kind}; never written)"
        waiting = "ended, in grace period" if state.ended_since_ms is not None else "open"
        if not media.admits_conversation(state.events.values()):
            return f"{waiting}; its media type is not in INGEST_MEDIA_TYPES: it will be set aside"
        return waiting
    if state.written_revision < state.revision:
        return f"revision {state.revision} owed to the record store"
    return "finalized"


def summary(inspected: Inspected, timing: Timing, media: MediaFilter = ALL_MEDIA) -> dict[str, Any]:
    """Plain values for a table or JSON; `media` is the filter in force (INGEST_MEDIA_TYPES)."""
    state = inspected.state

    def when(ms: int | None) -> str | None:
        return None if ms is None else iso_ms(ms)

    return {
        "conversation_id": state.conversation_id,
        "phase": phase(state, media),
        "media_type": conversation_media(state.events.values()),
        "media_filter": media.describe(),
        "set_aside_at": when(state.filtered_at_ms),
        "events": len(state.events),
        "revision": state.revision,
        "written_revision": state.written_revision,
        "record_revision": inspected.record_revision,
        "duplicate_count": state.duplicate_count,
        "late_event_count": state.late_event_count,
        "first_seen_at": when(state.first_seen_at_ms),
        "last_applied_at": when(state.last_applied_at_ms),
        "ended_since": when(state.ended_since_ms),
        "next_deadline": when(state.next_deadline_ms(timing)),
        "finalized_at": when(state.record_meta.finalized_at_ms if state.record_meta else None),
        "watermarks": {
            p: {"sequence": s, "enqueued": when(t)} for p, (s, t) in state.watermarks.items()
        },
        "etag": inspected.etag,
        "storage": inspected.row,
    }


def events(state: ConversationState) -> list[dict[str, Any]]:
    """The distinct micro-events in order."""
    ordered = sorted(state.events.values(), key=lambda event: event.sort_key)
    return [
        {
            "timestamp": iso_ms(event.timestamp_ms),
            "action": event.action,
            "format": event.source_format,
            "order": [event.order_time_ms, event.sequence, event.kind],
            "identity": event.identity,
        }
        for event in ordered
    ]


def inspect(
    states: StateReader, records: RecordReader, conversation_id: str, where: str
) -> Inspected:
    """Load a conversation's state and record; `where` names the table for messages."""
    stored = states.stored(conversation_id)
    record = records.read(conversation_id)
    if stored is None:
        hint = (
            "its record is stored: the state was purged after retention"
            if record is not None
            else "the id is exact and case-sensitive; a new conversation has no state until "
            "its first batch is applied"
        )
        raise NotFound(f"no state for conversation {conversation_id!r} in {where}: {hint}")
    metadata = records.metadata(conversation_id) if record is not None else {}
    return Inspected(stored.state, stored.etag, stored.row, record, metadata)
