"""The canonical micro-event: what every accepted format normalizes to.

A NamedTuple rather than a pydantic model or a frozen dataclass: millions of these are built
per minute, they are already validated by the wire models, and a tuple is immutable, compact
and the cheapest object Python can build.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from schemas.wire import PayloadFormat

SortKey = tuple[int, int, str, str]


class MicroEvent(NamedTuple):
    """One distinct thing that happened in a conversation, with its identity and order."""

    conversation_id: str
    source_format: PayloadFormat
    identity: str
    """Idempotency key within the conversation (SPEC 3), as a compact string."""
    order_time_ms: int
    """Envelope `createdTimestamp`, or Genesys `eventTime`."""
    sequence: int | None
    """Envelope `details[].sequence`; None for the Genesys formats."""
    kind: str | None
    """Genesys kind (`customer.end`, …); None for envelopes."""
    timestamp_ms: int
    action: str
    """Micro-event name (envelope) or kind (Genesys), as received."""
    media: str | None = None
    direction: str | None = None
    status: str | None = None
    duration_s: float | None = None
    caller: str | None = None
    callee: str | None = None
    queue_ids: tuple[str, ...] = ()
    agent_ids: tuple[str, ...] = ()
    skill_ids: tuple[str, ...] = ()
    wrap_up_code: str | None = None
    held_ms: int | None = None
    wrapup_ms: int | None = None
    disconnect_type: str | None = None
    participant_id: str | None = None
    session_id: str | None = None

    @property
    def sort_key(self) -> SortKey:
        """Total, deterministic order: (time, sequence, kind, identity)."""
        return (self.order_time_ms, self.sequence or 0, self.kind or "", self.identity)

    def to_compact(self) -> tuple[Any, ...]:
        """Every field but the conversation id, positionally, for state storage."""
        return self[1:]

    @classmethod
    def from_compact(cls, conversation_id: str, values: list[Any]) -> MicroEvent:
        """Inverse of `to_compact`; tuples come back from JSON as lists."""
        if len(values) != len(cls._fields) - 1:
            raise ValueError(f"expected {len(cls._fields) - 1} stored values, got {len(values)}")
        fields = [conversation_id, *values]
        for index in _TUPLE_POSITIONS:
            fields[index] = tuple(fields[index])
        return cls._make(fields)  # cheaper than binding 23 arguments by name


# Positions of the tuple-valued fields.
_TUPLE_POSITIONS = tuple(
    MicroEvent._fields.index(name) for name in ("queue_ids", "agent_ids", "skill_ids")
)
