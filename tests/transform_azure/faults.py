"""Failure injection around the real Azure adapters: crash or fail at the k-th write."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.blob_records import BlobRecordSink
from adapters.state_plan import TableOp
from adapters.table_state import TableStateStore
from schemas.record import DeadLetter
from transform.errors import StorageUnavailable
from transform.ports import DeadLetterSink

Kind = Literal["commit", "record", "deadletter"]
Phase = Literal["before", "after"]


class Crash(BaseException):
    """The process dies here: nothing in the service may catch it."""


@dataclass
class Faults:
    """Counts writes by kind across restarts; fires once at the chosen one."""

    kind: Kind | None = None
    at: int = 0
    phase: Phase = "before"
    error: type[BaseException] = Crash
    calls: dict[str, int] = field(default_factory=dict)
    fired: bool = False
    down: set[str] = field(default_factory=set)
    """Kinds failing every time with `StorageUnavailable` (an outage), until removed."""

    def around(self, kind: Kind, write: Any) -> Any:
        if kind in self.down:
            raise StorageUnavailable(f"injected outage of {kind}")
        self.calls[kind] = self.calls.get(kind, 0) + 1
        hit = not self.fired and kind == self.kind and self.calls[kind] == self.at
        if hit and self.phase == "before":
            self.fired = True
            raise self.error(f"injected before {kind} #{self.at}")
        result = write()
        if hit:
            self.fired = True
            raise self.error(f"injected after {kind} #{self.at}")
        return result


class FaultyStore(TableStateStore):
    """The Table adapter with faults around each transaction."""

    faults: Faults

    def _submit(self, partition_key: str, ops: Sequence[TableOp]) -> list[str | None]:
        return self.faults.around(  # type: ignore[no-any-return]
            "commit", lambda: TableStateStore._submit(self, partition_key, ops)
        )

    def _read_row(
        self, partition_key: str, row_key: str, *, meta_only: bool = False
    ) -> tuple[dict[str, Any], str] | None:
        if "commit" in self.faults.down:
            raise StorageUnavailable("injected outage of the table")
        return TableStateStore._read_row(self, partition_key, row_key, meta_only=meta_only)


class FaultyRecords(BlobRecordSink):
    """The Blob record sink with faults around each write."""

    faults: Faults

    def write(self, record: dict[str, Any]) -> None:
        self.faults.around("record", lambda: BlobRecordSink.write(self, record))


@dataclass
class FaultyDeadLetters:
    """A dead-letter sink with faults around each write."""

    inner: DeadLetterSink
    faults: Faults

    def write(self, letter: DeadLetter) -> None:
        self.faults.around("deadletter", lambda: self.inner.write(letter))
