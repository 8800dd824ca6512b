"""What the core needs from the outside world, declared by the core (ports belong to their user).

Adapters in `adapters/` implement these for Azure and in memory; both must enforce the same
invariants: ETag preconditions, storage key rules and size limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from schemas.record import DeadLetter
from transform.state import ConversationState


class Clock(Protocol):
    """Processing time. Always aware UTC."""

    def now(self) -> datetime: ...


class StateStore(Protocol):
    """Accumulator state per conversation, with optimistic concurrency.

    `save` with `etag=None` inserts and fails with `ConcurrencyConflict` if the row exists;
    with an ETag it replaces only if the stored ETag still matches. `deadline_ms` is when the
    timer next has work on this conversation; `due` returns ids whose current deadline has
    passed. Transient failures raise `StorageUnavailable`.
    """

    def load(self, conversation_id: str) -> tuple[ConversationState, str] | None: ...

    def save(self, state: ConversationState, etag: str | None, deadline_ms: int) -> str: ...

    def delete(self, conversation_id: str, etag: str) -> None: ...

    def due(self, now_ms: int, limit: int) -> list[str]: ...


class RecordSink(Protocol):
    """Finalized records, one per conversation; a revision never replaces a higher one."""

    def write(self, record: dict[str, Any]) -> None: ...


class DeadLetterSink(Protocol):
    """Dead letters; writing the same id twice keeps one."""

    def write(self, letter: DeadLetter) -> None: ...
