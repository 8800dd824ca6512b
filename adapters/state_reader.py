"""The stored conversation state without being the consumer: counts, inspection, erasure.

`StateReader` is the port the telemetry probe (open conversations), the simulator (is the
pipeline idle?) and `ops state inspect` read through; `StateEraser` adds what `ops erase`
needs (every stored state, a conversation's footprint, deleting it). `ShardedStateReader`
implements both over any `ShardedStateStore`: the Table adapter built read-only (it never
creates the table or the spill container) with no cache and a counter of its own, so reading
never touches the consumer's figures, or the in-memory twin; built with its own clients
(`adapters.wiring.state_reader`), it closes them with itself.

Open conversations are counted on the due index: a finalized conversation waits for its purge
(retention, days away), so the index up to now + a horizon holds the conversations still open,
plus revisions owed and the few purged soon.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.entity import shard_of
from adapters.owned import ClosesOwned
from adapters.sharded_state import Footprint, ShardedStateStore
from transform.keys import safe_key
from transform.state import ConversationState

ROW_FACTS = ("Deadline", "Slot", "Spill", "StateBytes", "Revision", "Chunks")


@dataclass(frozen=True, slots=True)
class StoredState:
    """One conversation's state and where and how it is stored."""

    state: ConversationState
    etag: str
    row: dict[str, Any]
    """Table, shard, row key, deadline, index slot, spill blob, sizes."""


class StateReader(Protocol):
    """Read-only views of the conversation state."""

    def adopt_layout(self) -> int:
        """Use (and return) the shard count the table was created with."""
        ...

    def open_conversations(self, horizon_ms: int, limit: int) -> int:
        """Conversations with work due before `horizon_ms` (at most `limit` are counted)."""
        ...

    def stored(self, conversation_id: str) -> StoredState | None:
        """A conversation's decoded state and its storage facts, or None."""
        ...


class StateEraser(StateReader, Protocol):
    """What erasure needs on top of reading: find every conversation, and delete one whole."""

    def scan(self) -> Iterator[tuple[str, ConversationState | str]]:
        """Every stored state (or why one is unreadable), by conversation id."""
        ...

    def footprints(self, conversation_ids: Collection[str]) -> dict[str, Footprint]:
        """The state row, due-index rows and spill blobs of each conversation."""
        ...

    def erase(self, footprint: Footprint) -> Footprint:
        """Delete them (looking again if the consumer changed them); what was deleted."""
        ...


class ShardedStateReader(ClosesOwned):
    """`StateReader` and `StateEraser` over a state store that is used for nothing else."""

    def __init__(
        self, store: ShardedStateStore, where: str, *, owned: ExitStack | None = None
    ) -> None:
        """`owned`: the clients under `store` this reader closes (None: the caller's)."""
        self._store = store
        self._owned = owned or ExitStack()
        self._where = where
        self._adopted = False

    def adopt_layout(self) -> int:
        """Use (and return) the shard count the table was created with (read until found)."""
        if not self._adopted:
            self._adopted = self._store.adopt_layout() is not None
        return self._store.shards

    def open_conversations(self, horizon_ms: int, limit: int) -> int:
        """Conversations with work due before `horizon_ms` (at most `limit` are counted)."""
        self.adopt_layout()
        return len(self._store.due(horizon_ms, limit))

    def stored(self, conversation_id: str) -> StoredState | None:
        """A conversation's decoded state and its storage facts, or None."""
        shards = self.adopt_layout()
        loaded = self._store.load(conversation_id)
        if loaded is None:
            return None
        state, etag = loaded
        row: dict[str, Any] = {
            "table": self._where,
            "partition_key": shard_of(conversation_id, shards),
            "row_key": safe_key(conversation_id),
        }
        entity = self._store.stored_row(conversation_id) or {}
        for name in ROW_FACTS:
            row[name.lower()] = entity.get(name)
        return StoredState(state, etag, row)

    def scan(self) -> Iterator[tuple[str, ConversationState | str]]:
        """Every stored state (or why one is unreadable), by conversation id."""
        self.adopt_layout()
        yield from self._store.scan()

    def footprints(self, conversation_ids: Collection[str]) -> dict[str, Footprint]:
        """The state row, due-index rows and spill blobs of each conversation."""
        self.adopt_layout()
        return self._store.footprints(conversation_ids)

    def erase(self, footprint: Footprint) -> Footprint:
        """Delete them (looking again if the consumer changed them); what was deleted."""
        self.adopt_layout()
        return self._store.erase(footprint)
