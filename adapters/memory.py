"""In-memory twins of the storage ports, enforcing the same invariants as Azure.

The state store is the Table adapter's own logic (`adapters.sharded_state`) over dict
primitives that behave like Table Storage: ETags change on every write and are checked on
replace and delete, inserts fail on existing rows, transactions are atomic, hold at most 100
entities of one PartitionKey and stay under 4 MiB, and every entity obeys the Table key and
size rules. Records never go back to a lower revision. Used by the offline replay and the fast
tests.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.entity import (
    INDEX_PREFIX,
    LAYOUT_PARTITION,
    LAYOUT_ROW,
    MAX_TRANSACTION_OPS,
    STATE_SHARDS,
)
from adapters.opcount import OperationCounter, OperationCounts
from adapters.sharded_state import ShardedStateStore, TransactionRefused, TransactionTooLarge
from adapters.state_plan import TableOp
from schemas.record import DeadLetter

__all__ = [
    "InMemoryDeadLetterSink",
    "InMemoryRecordSink",
    "InMemoryStateStore",
    "ManualClock",
    "OperationCounts",
]

MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class _Backing:
    """The "storage account": rows, index order and spill blobs, shared by every view."""

    rows: dict[tuple[str, str], tuple[dict[str, Any], str]] = field(default_factory=dict)
    index_heaps: dict[str, list[str]] = field(default_factory=dict)
    spills: dict[str, bytes] = field(default_factory=dict)
    etags: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


class InMemoryStateStore(ShardedStateStore):
    """`StateStore` over a dict of Table-shaped entities and a dict of spill blobs."""

    def __init__(
        self,
        *,
        cache_size: int = 10_000,
        shards: int = STATE_SHARDS,
        presume_new: bool = False,
        counter: OperationCounter | None = None,
    ) -> None:
        super().__init__(counter or OperationCounter(), cache_size, shards, presume_new=presume_new)
        self._backing = _Backing()
        self._rows = self._backing.rows
        self._index_heaps = self._backing.index_heaps
        self._spills = self._backing.spills
        self._lock = self._backing.lock
        self.fail_next: list[Exception] = []
        """Errors to raise from the next primitive calls, in order (fault injection)."""

    def another_process(self, **kwargs: Any) -> InMemoryStateStore:
        """A second store over the same storage with its own cache, like another worker."""
        kwargs.setdefault("shards", self.shards)
        view = InMemoryStateStore(**kwargs)
        view._backing = self._backing
        view._rows = self._backing.rows
        view._index_heaps = self._backing.index_heaps
        view._spills = self._backing.spills
        view._lock = self._backing.lock
        return view

    def ensure_table(self) -> None:
        """Record the shard count like a new table does, or adopt the one recorded."""
        layout = {"PartitionKey": LAYOUT_PARTITION, "RowKey": LAYOUT_ROW, "Shards": self.shards}
        try:
            self._submit(LAYOUT_PARTITION, [TableOp("create", layout)])
        except TransactionRefused:
            self.adopt_layout()

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _read_row(
        self, partition_key: str, row_key: str, *, meta_only: bool = False
    ) -> tuple[dict[str, Any], str] | None:
        self._maybe_fail()
        self.counter.count("table_reads")
        with self._lock:
            row = self._rows.get((partition_key, row_key))
        return None if row is None else (dict(row[0]), row[1])

    def _submit(self, partition_key: str, ops: Sequence[TableOp]) -> list[str | None]:
        self._maybe_fail()
        self.counter.count("table_writes")
        if not ops or len(ops) > MAX_TRANSACTION_OPS:
            raise ValueError(f"a transaction holds 1 to 100 operations, not {len(ops)}")
        row_keys = [op.entity["RowKey"] for op in ops]
        if len(set(row_keys)) != len(row_keys):
            raise ValueError("an entity appears twice in one transaction")
        if any(op.entity["PartitionKey"] != partition_key for op in ops):
            raise ValueError("a transaction spans PartitionKeys")
        # Entities come from the layout's builders, which check every Table rule already;
        # the request size is the transaction's own rule (binary goes as base64).
        size = sum(
            len(value) * 4 // 3 + 64
            for op in ops
            for value in op.entity.values()
            if isinstance(value, bytes)
        )
        if size > MAX_REQUEST_BYTES:
            raise TransactionTooLarge(f"{size} bytes")
        with self._lock:
            for index, op in enumerate(ops):
                current = self._rows.get((partition_key, op.entity["RowKey"]))
                if op.kind == "create" and current is not None:
                    raise TransactionRefused(index, "conflict", "the entity already exists")
                if op.kind in ("update", "delete") and current is None:
                    raise TransactionRefused(index, "missing", "no such entity")
                if op.etag is not None and current is not None and current[1] != op.etag:
                    raise TransactionRefused(index, "conflict", "the ETag does not match")
            self.counter.count("table_entities", len(ops))
            etags: list[str | None] = []
            for op in ops:
                key = (partition_key, op.entity["RowKey"])
                if op.kind == "delete":
                    del self._rows[key]
                    etags.append(None)
                    continue
                etag = f'W/"{next(self._backing.etags)}"'
                self._rows[key] = (dict(op.entity), etag)
                etags.append(etag)
                if key[1].startswith(INDEX_PREFIX):
                    heapq.heappush(self._index_heaps.setdefault(partition_key, []), key[1])
        return etags

    def _query_index(self, partition_key: str, upper: str, limit: int) -> list[dict[str, Any]]:
        self._maybe_fail()
        self.counter.count("table_queries")
        found: list[dict[str, Any]] = []
        with self._lock:
            heap = self._index_heaps.get(partition_key, [])
            popped: list[str] = []
            while heap and heap[0] < upper and len(found) < limit:
                row_key = heapq.heappop(heap)
                row = self._rows.get((partition_key, row_key))
                if row is not None and (not popped or popped[-1] != row_key):
                    popped.append(row_key)
                    found.append(dict(row[0]))
            for row_key in popped:  # still there: a query does not consume them
                heapq.heappush(heap, row_key)
        return found

    def _spill_write(self, name: str, data: bytes) -> None:
        self._maybe_fail()
        self.counter.count("blob_writes")
        with self._lock:
            self._spills[name] = data

    def _spill_read(self, name: str) -> bytes | None:
        self._maybe_fail()
        self.counter.count("blob_reads")
        with self._lock:
            return self._spills.get(name)

    def _spill_delete(self, name: str, *, prefix: bool = False) -> None:
        self._maybe_fail()
        with self._lock:
            names = [n for n in self._spills if n.startswith(name)] if prefix else [name]
            if prefix:
                self.counter.count("blob_reads")
            for found in names:
                self.counter.count("blob_writes")
                self._spills.pop(found, None)

    def _scan_rows(self, partition_key: str) -> Iterator[tuple[dict[str, Any], str]]:
        self._maybe_fail()
        self.counter.count("table_queries")
        with self._lock:
            rows = [
                (key[1], dict(row[0]), row[1])
                for key, row in self._rows.items()
                if key[0] == partition_key
            ]
        rows.sort(key=lambda found: found[0])
        for _, entity, etag in rows:
            yield entity, etag

    def _spill_names(self, prefix: str) -> list[str]:
        self._maybe_fail()
        self.counter.count("blob_reads")
        with self._lock:
            return sorted(name for name in self._spills if name.startswith(prefix))

    @property
    def spill_blobs(self) -> dict[str, bytes]:
        """The spill blobs (for tests)."""
        with self._lock:
            return dict(self._spills)

    def rows(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every stored entity by (PartitionKey, RowKey) (for tests)."""
        with self._lock:
            return {key: dict(row[0]) for key, row in self._rows.items()}

    def __len__(self) -> int:
        with self._lock:
            return sum(
                1
                for partition_key, row_key in self._rows
                if partition_key != LAYOUT_PARTITION and not row_key.startswith(INDEX_PREFIX)
            )


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
