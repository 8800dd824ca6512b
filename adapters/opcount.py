"""Counting the storage requests the consumer makes (SPEC 12 P2: operations per micro-event).

Every adapter request is counted once where it is sent: a point read, a query page, a write
request (a single-entity write or a whole entity-group transaction), a blob read or write.
Entities inside transactions and loads served from the cache are counted beside them but are
not requests. Counts go to a process-wide total and to the scope open in the current context
(one per batch or timer run), so concurrent invocations in one worker do not mix.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class OperationCounts:
    """Storage requests by kind, plus two non-request figures (entities, cache hits)."""

    table_reads: int = 0
    table_queries: int = 0
    table_writes: int = 0
    """Write requests: a single-entity write or one entity-group transaction."""
    table_entities: int = 0
    """Entities inserted, replaced or deleted inside those write requests (not requests)."""
    blob_reads: int = 0
    blob_writes: int = 0
    """Uploads and deletes."""
    cache_hits: int = 0
    """State loads answered from memory (not requests)."""
    presumed_new: int = 0
    """State loads answered "absent" without a read, the conversation presumed new."""

    @property
    def total(self) -> int:
        """Every storage request (what the account is billed and throttled on)."""
        return (
            self.table_reads
            + self.table_queries
            + self.table_writes
            + self.blob_reads
            + self.blob_writes
        )

    def add(self, other: OperationCounts) -> None:
        """Accumulate another count into this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def copy(self) -> OperationCounts:
        """An independent snapshot."""
        return OperationCounts(**self.as_dict(with_total=False))

    def as_dict(self, *, with_total: bool = True) -> dict[str, int]:
        """For logs and metrics."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if with_total:
            out["total"] = self.total
        return out

    def as_log(self, prefix: str = "ops_") -> str:
        """`ops_table_reads=… ops_total=…`, for key=value log lines."""
        return " ".join(f"{prefix}{k}={v}" for k, v in self.as_dict().items())


_SCOPE: ContextVar[OperationCounts | None] = ContextVar("storage_operation_scope", default=None)


class OperationCounter:
    """Thread-safe running totals of storage requests, plus the current context's scope."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = OperationCounts()

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to one counter (a field name of `OperationCounts`)."""
        scope = _SCOPE.get()
        with self._lock:
            setattr(self._total, name, getattr(self._total, name) + n)
            if scope is not None:
                setattr(scope, name, getattr(scope, name) + n)

    def total(self) -> OperationCounts:
        """A snapshot of everything counted so far."""
        with self._lock:
            return self._total.copy()


@contextmanager
def operation_scope() -> Iterator[OperationCounts]:
    """Count, into the yielded object, every request made in this context until the exit."""
    scope = OperationCounts()
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


METRICS = OperationCounter()
"""The worker process's totals: every Azure adapter wired by `adapters.wiring` counts here."""


class CountedDeadLetters:
    """A dead-letter sink that counts its writes as blob writes (one request each)."""

    def __init__(self, inner: Any, counter: OperationCounter) -> None:
        self._inner = inner
        self._counter = counter

    def write(self, letter: Any) -> None:
        """Write through, counting the request."""
        self._counter.count("blob_writes")
        self._inner.write(letter)
