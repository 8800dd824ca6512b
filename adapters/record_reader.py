"""Reading the records the pipeline stored: one, its metadata, or all of them; deleting one.

One JSON blob per conversation, `<safe key>.json`, metadata `revision` (written by
`adapters.blob_records`). Reading goes through a `ContainerReader` (Blob Storage, or its
in-memory twin), so `ops state inspect` and the simulator's verification read the same way.
A reader built with its own clients (`adapters.wiring.record_reader`) closes them with itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import orjson

from adapters.blob_records import record_blob_name
from adapters.containers import ContainerReader
from adapters.owned import ClosesOwned


class RecordReader(ClosesOwned):
    """The records container, read through a `ContainerReader`."""

    def __init__(self, container: ContainerReader, *, owned: ExitStack | None = None) -> None:
        """`owned`: the clients under `container` this reader closes (None: the caller's)."""
        self._container = container
        self._owned = owned or ExitStack()
        self._listed: dict[str, datetime | None] | None = None

    @property
    def name(self) -> str:
        """The container's name."""
        return self._container.name

    def describe(self) -> str:
        """`<account>/<container>`."""
        return self._container.describe()

    def read(self, conversation_id: str) -> dict[str, Any] | None:
        """A conversation's stored record (None: none written yet)."""
        found = self._container.read(record_blob_name(conversation_id))
        if found is None:
            return None
        document: dict[str, Any] = orjson.loads(found[0])
        return document

    def stored(self, conversation_id: str) -> bool:
        """Whether the conversation has a record."""
        return self._container.read(record_blob_name(conversation_id)) is not None

    def metadata(self, conversation_id: str) -> dict[str, str]:
        """The record blob's metadata (empty when there is no record)."""
        found = self._container.read(record_blob_name(conversation_id))
        return {} if found is None else found[1]

    def listed(self) -> dict[str, datetime | None]:
        """Every record blob's name and last-modified time (listed once, then remembered)."""
        if self._listed is None:
            self._listed = {blob.name: blob.last_modified for blob in self._container.list()}
        return self._listed

    def contents(self) -> Iterator[tuple[str, bytes | str]]:
        """Every listed record's bytes, or a text saying why it could not be read."""
        yield from self._container.read_many(sorted(self.listed()))

    def delete(self, conversation_id: str) -> bool:
        """Delete a conversation's record (its one blob: revisions replace each other);
        False when there was none."""
        name = record_blob_name(conversation_id)
        if self._listed is not None:
            self._listed.pop(name, None)
        return self._container.delete(name)
