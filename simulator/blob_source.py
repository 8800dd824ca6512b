"""`RecordSource` over Blob Storage: the records and dead letters the live pipeline wrote.

Records: one blob per conversation in the records container (SPEC 8). Dead letters: the
`deadletter` container, read with the pipeline's own reader (`adapters.blob_deadletters`);
a letter written again on a later day sits under another date prefix with the same id, so
letters are deduplicated by id. Downloads run on a few threads: Azurite answers one blob at a
time per connection, and thousands of records are common.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import orjson
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, LinearRetry
from pydantic import ValidationError

from adapters.blob_deadletters import read_letter
from adapters.credentials import blob_service
from simulator.errors import UsageError
from simulator.settings import StorageTarget
from simulator.sources import Found

DOWNLOAD_THREADS = 8


class BlobRecordSource:
    """Records and dead letters in the pipeline's storage account."""

    def __init__(self, target: StorageTarget, *, threads: int = DOWNLOAD_THREADS) -> None:
        self.target = target
        self.threads = threads
        self._service: BlobServiceClient | None = None
        self.modified: dict[str, datetime] = {}
        """Last-modified time of every record read, by conversation id (for latencies)."""
        self.finalized: dict[str, str] = {}
        """`finalized_at` of every record read, by conversation id."""
        self._names: list[str] | None = None
        self._listed_modified: dict[str, datetime] = {}

    def _client(self) -> BlobServiceClient:
        if self._service is None:
            # Few, quick retries: the default back-off waits over a minute for a stopped Azurite.
            retry = LinearRetry(backoff=1, retry_total=2, random_jitter_range=1)
            self._service, _ = blob_service(
                self.target.connection, retry_policy=retry, connection_timeout=5
            )
        return self._service

    def _container(self, name: str) -> ContainerClient:
        return self._client().get_container_client(name)

    def describe(self) -> str:
        account = self._client().account_name or "storage"
        return (
            f"blob {account}/{self.target.records_container} + {self.target.deadletter_container}"
        )

    def _list(self, container: str) -> list[tuple[str, datetime]]:
        try:
            return [(b.name, b.last_modified) for b in self._container(container).list_blobs()]
        except ResourceNotFoundError:
            return []  # nothing written yet: every expected record is missing
        except AzureError as e:
            msg = (
                f"cannot list container {container!r}: {type(e).__name__}: {str(e)[:200]}; "
                "is the storage account (StateStorage) reachable? `python -m devstack status`"
            )
            raise UsageError(msg) from e

    def _download(self, container: str, names: list[str]) -> Iterator[tuple[str, bytes | str]]:
        client = self._container(container)

        def one(name: str) -> tuple[str, bytes | str]:
            try:
                return name, client.download_blob(name).readall()
            except AzureError as e:
                return name, f"cannot download: {type(e).__name__}: {str(e)[:200]}"

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            yield from pool.map(one, names)

    def count(self) -> int:
        """How many record blobs there are (for a progress bar)."""
        if self._names is None:
            listed = self._list(self.target.records_container)
            self._names = [name for name, _ in listed]
            self._listed_modified = dict(listed)
        return len(self._names)

    def records(self) -> Iterator[Found]:
        self.count()
        assert self._names is not None
        for name, data in self._download(self.target.records_container, self._names):
            location = f"{self.target.records_container}/{name}"
            if isinstance(data, str):
                yield Found(location, error=data)
                continue
            try:
                value: Any = orjson.loads(data)
            except orjson.JSONDecodeError as e:
                yield Found(location, error=f"unreadable record: {e}")
                continue
            if isinstance(value, dict) and isinstance(value.get("conversation_id"), str):
                self.modified[value["conversation_id"]] = self._listed_modified[name]
                if isinstance(value.get("finalized_at"), str):
                    self.finalized[value["conversation_id"]] = value["finalized_at"]
            yield Found(location, value)

    def dead_letters(self) -> Iterator[Found]:
        container = self.target.deadletter_container
        names = sorted(name for name, _ in self._list(container))
        seen: set[str] = set()
        for name, data in self._download(container, names):
            location = f"{container}/{name}"
            if isinstance(data, str):
                yield Found(location, error=data)
                continue
            try:
                letter = read_letter(data)
            except ValidationError as e:
                yield Found(location, error=f"unreadable dead letter: {str(e)[:200]}")
                continue
            if letter.id in seen:
                continue
            seen.add(letter.id)
            yield Found(location, letter.model_dump(mode="json"))

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None
