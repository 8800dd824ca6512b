"""`RecordSource` over Blob Storage: the records and dead letters the live pipeline wrote.

Records: one blob per conversation in the records container (SPEC 8). Dead letters: the
`deadletter` container, one per id. Both are read through the adapters' readers
(`adapters.record_reader`, `adapters.deadletter_store`), several downloads at once. The
readers it builds, it closes (`close`, or `with`); readers given to it stay open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import orjson

from adapters.deadletter_store import DeadLetterStore
from adapters.owned import ClosesOwned
from adapters.record_reader import RecordReader
from adapters.settings import OutputSettings
from adapters.wiring import deadletter_store, record_reader
from simulator.verify.sources import Found


class BlobRecordSource(ClosesOwned):
    """Records and dead letters in the pipeline's storage account."""

    def __init__(
        self,
        target: OutputSettings,
        *,
        records: RecordReader | None = None,
        letters: DeadLetterStore | None = None,
    ) -> None:
        """`records` / `letters`: other readers (the in-memory twins in tests), which the
        caller closes."""
        self.target = target
        with ExitStack() as opened:  # closes what it opened if the second one fails
            self._records = records or opened.enter_context(record_reader(target))
            self._letters = letters or opened.enter_context(deadletter_store(target))
            self._owned = opened.pop_all()
        self.modified: dict[str, datetime] = {}
        """Last-modified time of every record read, by conversation id (for latencies)."""
        self.finalized: dict[str, str] = {}
        """`finalized_at` of every record read, by conversation id."""

    def describe(self) -> str:
        return f"blob {self._records.describe()} + {self._letters.name}"

    def count(self) -> int:
        """How many record blobs there are (for a progress bar)."""
        return len(self._records.listed())

    def records(self) -> Iterator[Found]:
        listed = self._records.listed()
        for name, data in self._records.contents():
            location = f"{self._records.name}/{name}"
            if isinstance(data, str):
                yield Found(location, error=data)
                continue
            try:
                value: Any = orjson.loads(data)
            except orjson.JSONDecodeError as e:
                yield Found(location, error=f"unreadable record: {e}")
                continue
            if isinstance(value, dict) and isinstance(value.get("conversation_id"), str):
                modified = listed.get(name)
                if modified is not None:
                    self.modified[value["conversation_id"]] = modified
                if isinstance(value.get("finalized_at"), str):
                    self.finalized[value["conversation_id"]] = value["finalized_at"]
            yield Found(location, value)

    def dead_letters(self) -> Iterator[Found]:
        for name, letter in self._letters.letters():
            location = f"{self._letters.name}/{name}"
            if isinstance(letter, str):
                yield Found(location, error=letter)
            else:
                yield Found(location, letter.model_dump(mode="json"))
