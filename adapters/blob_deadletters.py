"""Dead letters as Blob Storage blobs (SPEC 7), for ingest (async) and the transform (sync).

Container `deadletter` (DEADLETTER_CONTAINER), one JSON blob per letter named
`<stage>/<yyyy>/<mm>/<dd>/<id>.json` after the letter's `received_at` date, holding the
`DeadLetter` model as JSON; blob metadata carries `stage`, `reason` and `deadletter_id`.

Idempotent per id: the write is create-only, so writing the same letter again (a redelivered
batch, a retried request) keeps the first copy and succeeds. A retry on a later UTC day lands
under that day's prefix: readers that span days deduplicate by `id`.

Transient failures raise `transform.errors.StorageUnavailable` (the port's contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings
from azure.storage.blob import LinearRetry as SyncLinearRetry
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from azure.storage.blob.aio import LinearRetry

from adapters.clients import async_blob_service, blob_service
from adapters.settings import StorageConnection
from schemas.record import DeadLetter
from transform.errors import StorageUnavailable
from transform.keys import safe_key

log = logging.getLogger(__name__)

DEFAULT_CONTAINER = "deadletter"
_CONTENT = ContentSettings(content_type="application/json; charset=utf-8")


def blob_name(letter: DeadLetter) -> str:
    """`<stage>/<yyyy>/<mm>/<dd>/<id>.json`; the id is safe-encoded (ids are ours, but cheap)."""
    date = letter.received_at[:10]
    parts = date.split("-")
    valid = len(parts) == 3 and all(p.isdigit() for p in parts)
    prefix = "/".join(parts) if valid else "undated"
    return f"{letter.stage}/{prefix}/{safe_key(letter.id)}.json"


def blob_body(letter: DeadLetter) -> bytes:
    """The blob's content: the letter as JSON."""
    return letter.model_dump_json().encode()


def blob_metadata(letter: DeadLetter) -> dict[str, str]:
    """Blob metadata (ASCII only, as Blob Storage requires)."""
    return {
        "stage": letter.stage,
        "reason": letter.reason.encode("ascii", "replace").decode()[:256],
        "deadletter_id": safe_key(letter.id),
    }


def read_letter(data: bytes) -> DeadLetter:
    """Parse a blob written by these sinks (for replay and tests)."""
    return DeadLetter.model_validate_json(data)


def _unavailable(letter: DeadLetter, container: str, error: Exception) -> StorageUnavailable:
    return StorageUnavailable(
        f"dead letter {letter.id} was not stored in container {container!r}: "
        f"{type(error).__name__}: {str(error)[:300]}; check the StateStorage setting and "
        "that the storage account is reachable"
    )


def _container_missing(error: ResourceNotFoundError) -> bool:
    return getattr(error, "error_code", None) == "ContainerNotFound"


class AsyncBlobDeadLetterSink:
    """Async dead-letter writer (ingest); one client per event loop, created on first use."""

    def __init__(
        self,
        connection: StorageConnection,
        container: str = DEFAULT_CONTAINER,
        **client_kwargs: Any,
    ) -> None:
        """`client_kwargs` go to the SDK client (defaults keep a write within a few seconds)."""
        self._connection = connection
        self._container = container
        self._client_kwargs: dict[str, Any] = {
            "retry_policy": LinearRetry(backoff=1, retry_total=2, random_jitter_range=1),
            "connection_timeout": 5,
            "read_timeout": 10,
            **client_kwargs,
        }
        self._client: AsyncBlobServiceClient | None = None
        self._credential: AsyncTokenCredential | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._container_ready = False

    @property
    def container(self) -> str:
        """The container written to."""
        return self._container

    async def _service(self) -> AsyncBlobServiceClient:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (tests, a restarted worker): old clients are dead
            self._client, self._credential, self._lock = None, None, asyncio.Lock()
            self._loop, self._container_ready = loop, False
        assert self._lock is not None
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client, self._credential = async_blob_service(
                        self._connection, **self._client_kwargs
                    )
        return self._client

    async def write(self, letter: DeadLetter) -> None:
        """Store a letter; the same id again keeps the first copy."""
        service = await self._service()
        blob = service.get_blob_client(self._container, blob_name(letter))
        data, metadata = blob_body(letter), blob_metadata(letter)
        try:
            try:
                await blob.upload_blob(
                    data, overwrite=False, metadata=metadata, content_settings=_CONTENT
                )
            except ResourceNotFoundError as e:
                if not _container_missing(e):
                    raise
                await self._create_container(service)
                await blob.upload_blob(
                    data, overwrite=False, metadata=metadata, content_settings=_CONTENT
                )
        except ResourceExistsError:
            log.debug("dead letter already stored deadletter_id=%s", letter.id)
        except AzureError as e:
            raise _unavailable(letter, self._container, e) from e

    async def _create_container(self, service: AsyncBlobServiceClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            await service.create_container(self._container)
            log.info("created container=%s", self._container)

    async def close(self) -> None:
        """Close the client (and its credential) of the current loop."""
        client, credential = self._client, self._credential
        self._client = self._credential = None
        if client is not None:
            await client.close()
        if credential is not None:
            await credential.close()


class BlobDeadLetterSink:
    """Sync dead-letter writer: `transform.ports.DeadLetterSink` over Blob Storage."""

    def __init__(
        self,
        connection: StorageConnection,
        container: str = DEFAULT_CONTAINER,
        **client_kwargs: Any,
    ) -> None:
        """The client is created on first write; `client_kwargs` go to the SDK client."""
        self._connection = connection
        self._container = container
        self._client_kwargs: dict[str, Any] = {
            "retry_policy": SyncLinearRetry(backoff=2, retry_total=3, random_jitter_range=1),
            "connection_timeout": 5,
            "read_timeout": 20,
            **client_kwargs,
        }
        self._client: BlobServiceClient | None = None
        self._credential: TokenCredential | None = None

    def _service(self) -> BlobServiceClient:
        if self._client is None:
            self._client, self._credential = blob_service(self._connection, **self._client_kwargs)
        return self._client

    def write(self, letter: DeadLetter) -> None:
        """Store a letter; the same id again keeps the first copy."""
        service = self._service()
        blob = service.get_blob_client(self._container, blob_name(letter))
        data, metadata = blob_body(letter), blob_metadata(letter)
        try:
            try:
                blob.upload_blob(
                    data, overwrite=False, metadata=metadata, content_settings=_CONTENT
                )
            except ResourceNotFoundError as e:
                if not _container_missing(e):
                    raise
                with contextlib.suppress(ResourceExistsError):
                    service.create_container(self._container)
                blob.upload_blob(
                    data, overwrite=False, metadata=metadata, content_settings=_CONTENT
                )
        except ResourceExistsError:
            log.debug("dead letter already stored deadletter_id=%s", letter.id)
        except AzureError as e:
            raise _unavailable(letter, self._container, e) from e

    def close(self) -> None:
        """Close the client (and its credential)."""
        client, credential = self._client, self._credential
        self._client = self._credential = None
        if client is not None:
            client.close()
        if credential is not None:
            close = getattr(credential, "close", None)
            if close is not None:
                close()


@dataclass(slots=True)
class InMemoryAsyncDeadLetterSink:
    """The async sink's twin: same create-only semantics and names; failures on demand."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    fail_with: Exception | None = None
    """Raise this (wrapped as `StorageUnavailable`) on every write while set."""
    delay_seconds: float = 0.0
    writes: int = 0

    async def write(self, letter: DeadLetter) -> None:
        """Store a letter by its blob name unless one is there already."""
        self.writes += 1
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_with is not None:
            raise _unavailable(letter, DEFAULT_CONTAINER, self.fail_with)
        self.blobs.setdefault(blob_name(letter), blob_body(letter))

    @property
    def letters(self) -> dict[str, DeadLetter]:
        """Stored letters by id."""
        parsed = (read_letter(data) for data in self.blobs.values())
        return {letter.id: letter for letter in parsed}
