"""Reading a Blob container's contents: the port under every reader of the pipeline's output.

`ContainerReader` lists blobs (with metadata and creation time), downloads them (several at
once: Azurite answers one blob at a time per connection, and thousands of records are common),
sets metadata and deletes them (erasure, the local stack's dead-letter purge).
`BlobContainerReader` speaks Blob Storage; `InMemoryContainer` is its twin. A missing container
reads as empty; any other failure is `Unreachable`, naming the settings to check.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from adapters.errors import Unreachable

DOWNLOAD_THREADS = 8


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """One blob as listed (no download)."""

    name: str
    size: int
    last_modified: datetime | None
    metadata: Mapping[str, str]
    created: datetime | None = None
    """When the blob was first written (rewrites keep it), as lifecycle rules count."""


class ContainerReader(Protocol):
    """One container's blobs."""

    @property
    def name(self) -> str:
        """The container's name."""
        ...

    def describe(self) -> str:
        """`<account>/<container>`, for messages."""
        ...

    def list(self, prefix: str = "") -> Iterator[StoredBlob]:
        """Blobs whose names start with `prefix`, in name order (none if no container)."""
        ...

    def read(self, name: str) -> tuple[bytes, dict[str, str]] | None:
        """A blob's content and metadata, or None if there is no such blob."""
        ...

    def read_many(self, names: Sequence[str]) -> Iterator[tuple[str, bytes | str]]:
        """Each blob's content in the order named, or a text saying why it could not be read."""
        ...

    def set_metadata(self, name: str, metadata: Mapping[str, str]) -> None:
        """Replace a blob's metadata (its content stays)."""
        ...

    def delete(self, name: str) -> bool:
        """Delete a blob; False when there was none (already gone is not an error)."""
        ...


class BlobContainerReader:
    """`ContainerReader` over a Blob Storage container."""

    def __init__(
        self, container: ContainerClient, *, hint: str, threads: int = DOWNLOAD_THREADS
    ) -> None:
        """`hint` ends every error message: which settings to check."""
        self._container = container
        self._hint = hint
        self._threads = threads

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self._container.container_name)

    def describe(self) -> str:
        """`<account>/<container>`, for messages."""
        return f"{self._container.account_name or 'storage'}/{self.name}"

    def _unreachable(self, what: str, error: Exception) -> Unreachable:
        return Unreachable(
            f"could not {what} in container {self.name!r}: {type(error).__name__}: "
            f"{str(error).splitlines()[0][:300] if str(error) else ''}; {self._hint}"
        )

    def list(self, prefix: str = "") -> Iterator[StoredBlob]:
        """Blobs whose names start with `prefix`, in name order (none if no container)."""
        try:
            for blob in self._container.list_blobs(
                name_starts_with=prefix or None, include=["metadata"]
            ):
                yield StoredBlob(
                    blob.name,
                    int(blob.size or 0),
                    blob.last_modified,
                    dict(blob.metadata or {}),
                    blob.creation_time,
                )
        except ResourceNotFoundError:
            return  # nothing written yet
        except AzureError as e:
            raise self._unreachable("list", e) from e

    def read(self, name: str) -> tuple[bytes, dict[str, str]] | None:
        """A blob's content and metadata, or None if there is no such blob."""
        try:
            downloaded = self._container.get_blob_client(name).download_blob()
            return downloaded.readall(), dict(downloaded.properties.metadata or {})
        except ResourceNotFoundError:
            return None
        except AzureError as e:
            raise self._unreachable(f"read {name}", e) from e

    def read_many(self, names: Sequence[str]) -> Iterator[tuple[str, bytes | str]]:
        """Each blob's content in the order named, or a text saying why it could not be read."""

        def one(name: str) -> tuple[str, bytes | str]:
            try:
                return name, self._container.download_blob(name).readall()
            except AzureError as e:
                return name, f"cannot download: {type(e).__name__}: {str(e)[:200]}"

        with ThreadPoolExecutor(max_workers=self._threads) as pool:
            yield from pool.map(one, names)

    def set_metadata(self, name: str, metadata: Mapping[str, str]) -> None:
        """Replace a blob's metadata (its content stays)."""
        try:
            self._container.get_blob_client(name).set_blob_metadata(dict(metadata))
        except AzureError as e:
            raise self._unreachable(f"mark {name}", e) from e

    def delete(self, name: str) -> bool:
        """Delete a blob; False when there was none (already gone is not an error)."""
        try:
            self._container.delete_blob(name)
        except ResourceNotFoundError:
            return False
        except AzureError as e:
            raise self._unreachable(f"delete {name}", e) from e
        return True


@dataclass(slots=True)
class _Blob:
    data: bytes
    metadata: dict[str, str]
    last_modified: datetime | None
    created: datetime | None


@dataclass(slots=True)
class InMemoryContainer:
    """The container reader's twin, which tests and in-memory writers fill with `put`."""

    container: str = "memory"
    blobs: dict[str, _Blob] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    """Blobs that list but fail to download (a failure on demand)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        """The container's name."""
        return self.container

    def describe(self) -> str:
        """`memory/<container>`."""
        return f"memory/{self.container}"

    def put(
        self,
        name: str,
        data: bytes,
        metadata: Mapping[str, str] | None = None,
        last_modified: datetime | None = None,
        created: datetime | None = None,
    ) -> None:
        """Store a blob (replacing one of the same name, whose creation time it keeps, as Blob
        Storage does; `created` defaults to `last_modified`)."""
        with self._lock:
            previous = self.blobs.get(name)
            if previous is not None and previous.created is not None:
                created = previous.created
            self.blobs[name] = _Blob(
                data, dict(metadata or {}), last_modified, created or last_modified
            )

    def list(self, prefix: str = "") -> Iterator[StoredBlob]:
        """Blobs whose names start with `prefix`, in name order."""
        with self._lock:
            listed = [
                StoredBlob(
                    name, len(blob.data), blob.last_modified, dict(blob.metadata), blob.created
                )
                for name, blob in sorted(self.blobs.items())
                if name.startswith(prefix)
            ]
        yield from listed

    def read(self, name: str) -> tuple[bytes, dict[str, str]] | None:
        """A blob's content and metadata, or None if there is no such blob."""
        with self._lock:
            blob = self.blobs.get(name)
            return None if blob is None else (blob.data, dict(blob.metadata))

    def read_many(self, names: Sequence[str]) -> Iterator[tuple[str, bytes | str]]:
        """Each blob's content in the order named, or a text saying why it could not be read."""
        for name in names:
            with self._lock:
                blob = self.blobs.get(name)
            if blob is None or name in self.unreadable:
                yield name, "cannot download: not readable"
            else:
                yield name, blob.data

    def set_metadata(self, name: str, metadata: Mapping[str, str]) -> None:
        """Replace a blob's metadata (its content stays)."""
        with self._lock:
            self.blobs[name].metadata = dict(metadata)

    def delete(self, name: str) -> bool:
        """Delete a blob; False when there was none."""
        with self._lock:
            return self.blobs.pop(name, None) is not None
