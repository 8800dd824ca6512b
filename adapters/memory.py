"""In-memory twins of the storage ports, enforcing the same invariants as Azure.

ETags change on every write and are checked on replace and delete, inserts fail on existing
rows, entities go through the same Table layout and limits as the real adapter, and records
never go back to a lower revision. Used by the offline replay and the fast tests.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.entity import STATE_ROW, state_blob, state_entity
from schemas.record import DeadLetter
from transform.errors import ConcurrencyConflict
from transform.keys import safe_key
from transform.state import ConversationState, decode_state, encode_state


@dataclass(slots=True)
class OperationCounts:
    """Storage operations, counted like the Azure adapters count theirs."""

    table_reads: int = 0
    table_writes: int = 0
    table_queries: int = 0
    blob_writes: int = 0

    @property
    def total(self) -> int:
        """Every operation."""
        return self.table_reads + self.table_writes + self.table_queries + self.blob_writes


class InMemoryStateStore:
    """`StateStore` over a dict of Table-shaped entities."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self._deadlines: list[tuple[int, str]] = []
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self.ops = OperationCounts()

    def load(self, conversation_id: str) -> tuple[ConversationState, str] | None:
        """The stored state and its ETag, or None."""
        with self._lock:
            self.ops.table_reads += 1
            row = self._rows.get((safe_key(conversation_id), STATE_ROW))
        if row is None:
            return None
        entity, etag = row
        return decode_state(state_blob(entity)), etag

    def save(self, state: ConversationState, etag: str | None, deadline_ms: int) -> str:
        """Insert (etag None) or replace if the ETag matches."""
        entity = state_entity(
            state.conversation_id, encode_state(state), deadline_ms, state.revision
        )
        key = (entity["PartitionKey"], STATE_ROW)
        with self._lock:
            self.ops.table_writes += 1
            current = self._rows.get(key)
            if etag is None and current is not None:
                raise ConcurrencyConflict(f"state for {state.conversation_id!r} already exists")
            if etag is not None and (current is None or current[1] != etag):
                raise ConcurrencyConflict(f"state for {state.conversation_id!r} has changed")
            new_etag = f'W/"{next(self._etags)}"'
            self._rows[key] = (entity, new_etag)
            heapq.heappush(self._deadlines, (deadline_ms, state.conversation_id))
        return new_etag

    def delete(self, conversation_id: str, etag: str) -> None:
        """Delete if the ETag matches."""
        key = (safe_key(conversation_id), STATE_ROW)
        with self._lock:
            self.ops.table_writes += 1
            current = self._rows.get(key)
            if current is None or current[1] != etag:
                raise ConcurrencyConflict(f"state for {conversation_id!r} has changed")
            del self._rows[key]

    def due(self, now_ms: int, limit: int) -> list[str]:
        """Ids whose current deadline is at or before `now_ms` (stale index entries skipped)."""
        found: list[str] = []
        with self._lock:
            self.ops.table_queries += 1
            while self._deadlines and self._deadlines[0][0] <= now_ms and len(found) < limit:
                deadline, conversation_id = heapq.heappop(self._deadlines)
                row = self._rows.get((safe_key(conversation_id), STATE_ROW))
                if row is not None and row[0]["Deadline"] == deadline:
                    found.append(conversation_id)
        return found

    def __len__(self) -> int:
        return len(self._rows)


@dataclass(slots=True)
class InMemoryRecordSink:
    """Latest revision per conversation; a lower revision is refused, an equal one replaces."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: int = 0

    def write(self, record: dict[str, Any]) -> None:
        """Store a revision."""
        self.writes += 1
        conversation_id = record["conversation_id"]
        current = self.records.get(conversation_id)
        if current is not None and current["revision"] > record["revision"]:
            return
        self.records[conversation_id] = record


@dataclass(slots=True)
class InMemoryDeadLetterSink:
    """Dead letters by id."""

    letters: dict[str, DeadLetter] = field(default_factory=dict)

    def write(self, letter: DeadLetter) -> None:
        """Store, keeping one per id."""
        self.letters[letter.id] = letter


@dataclass(slots=True)
class ManualClock:
    """A clock the caller moves."""

    current: datetime

    def now(self) -> datetime:
        """The time it was set to."""
        return self.current

    def set(self, moment: datetime) -> None:
        """Move to `moment` (never backwards)."""
        if moment < self.current:
            raise ValueError(f"clock cannot go back from {self.current} to {moment}")
        self.current = moment
