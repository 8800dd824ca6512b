"""What the core needs from the outside world, declared by the core (ports belong to their user).

Adapters in `adapters/` implement these for Azure and in memory; both must enforce the same
invariants: ETag preconditions, storage key rules and size limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from schemas.record import DeadLetter
from transform.state import ConversationState


class Clock(Protocol):
    """Processing time. Always aware UTC."""

    def now(self) -> datetime: ...


class SettableClock(Clock, Protocol):
    """A clock its user moves (the offline replay's simulated processing time)."""

    def set(self, moment: datetime) -> None:
        """Move to `moment` (never backwards)."""
        ...


@dataclass(slots=True)  # not frozen: built once per conversation per batch, frozen costs 3x
class Put:
    """Insert a conversation's state (`etag` None) or replace it if its ETag still matches."""

    state: ConversationState
    etag: str | None
    deadline_ms: int
    """When the timer next has work on this conversation."""


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete a conversation's state if its ETag still matches."""

    conversation_id: str
    etag: str


StateChange = Put | Delete


@dataclass(slots=True)
class CommitResult:
    """What happened to each change of a `commit`, by conversation id."""

    etags: dict[str, str] = field(default_factory=dict)
    """New ETag of every `Put` that was written."""
    deleted: set[str] = field(default_factory=set)
    conflicts: set[str] = field(default_factory=set)
    """Changes whose ETag precondition failed; nothing of theirs was written."""
    too_large: set[str] = field(default_factory=set)
    """Puts whose state outgrew every storage limit; nothing of theirs was written."""


class StateStore(Protocol):
    """Accumulator state per conversation, with optimistic concurrency.

    `commit` applies many changes at once (an adapter may group them into few storage
    requests) but each change succeeds or fails on its own ETag precondition, atomically with
    the conversation's due-index entry. `due` returns candidates whose deadline may have
    passed, at least every conversation whose deadline has; the caller re-checks each one.
    Transient failures raise `StorageUnavailable`; changes already written stay written.
    """

    def load(
        self, conversation_id: str, *, presume_absent: bool = False
    ) -> tuple[ConversationState, str] | None:
        """The stored state and its ETag, or None.

        With `presume_absent` a store may answer None without reading when it believes the
        conversation is new; inserting it then reports a conflict if it was not, and the caller
        loads again without the flag. Only safe because nothing is written before a commit.
        """
        ...

    def commit(self, changes: Sequence[StateChange], now_ms: int) -> CommitResult: ...

    def save(self, state: ConversationState, etag: str | None, deadline_ms: int) -> str:
        """One `Put`; raises `ConcurrencyConflict` or `StateTooLarge` instead of reporting."""
        ...

    def delete(self, conversation_id: str, etag: str) -> None:
        """One `Delete`; raises `ConcurrencyConflict` instead of reporting."""
        ...

    def due(self, now_ms: int, limit: int) -> list[str]: ...


class RecordSink(Protocol):
    """Finalized records, one per conversation; a revision never replaces a higher one."""

    def write(self, record: dict[str, Any]) -> None: ...


class DeadLetterSink(Protocol):
    """Dead letters; writing the same id twice keeps one."""

    def write(self, letter: DeadLetter) -> None: ...
