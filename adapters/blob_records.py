"""`RecordSink` on Azure Blob Storage: one JSON blob per conversation, never going backwards.

Blob `<safe key>.json` in container `conversations`; the revision is in the body and in the
blob metadata (`revision`). Every write is conditional: a first revision is created only if
the blob does not exist (`If-None-Match: *`), any other write replaces only the ETag it has
just seen, after checking that the stored revision is not higher. An equal revision replaces
(a retried write of the same revision, rendered from the same committed state). A small LRU of
(revision, ETag) per blob this process wrote spares the HEAD before a later revision.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from adapters.azure_errors import storage_call
from adapters.opcount import METRICS, OperationCounter
from transform.errors import StorageUnavailable
from transform.keys import safe_key

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
_JSON = ContentSettings(content_type="application/json")


def record_blob_name(conversation_id: str) -> str:
    """Where a conversation's record lives in the container."""
    return f"{safe_key(conversation_id)}.json"


class BlobRecordSink:
    """Latest revision per conversation, written with ETag preconditions."""

    def __init__(
        self,
        container: ContainerClient,
        *,
        counter: OperationCounter = METRICS,
        cache_size: int = 20_000,
    ) -> None:
        self._container = container
        self.counter = counter
        self._cache_size = cache_size
        self._known: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._ready = False

    def ensure_container(self) -> None:
        """Create the container if it does not exist (once per process)."""
        with self._lock:
            if self._ready:
                return
        with (
            storage_call(f"create container {self._container.container_name}"),
            contextlib.suppress(ResourceExistsError),
        ):
            self._container.create_container()
        with self._lock:
            self._ready = True

    def write(self, record: dict[str, Any]) -> None:
        """Store a revision unless a higher one is already there."""
        name = record_blob_name(str(record["conversation_id"]))
        revision = int(record["revision"])
        body = orjson.dumps(record)
        blob = self._container.get_blob_client(name)
        known = self._recall(name)
        create = known is None and revision == 1  # most writes: one request
        for _ in range(MAX_ATTEMPTS):
            if create:
                if self._create(blob, body, revision):
                    return
                create, known = False, None
            if known is None:
                known = self._head(blob)
                if known is None:
                    create = True
                    continue
            stored_revision, etag = known
            if stored_revision > revision:
                log.info(
                    "record not replaced conversation_id=%s revision=%s stored_revision=%s",
                    str(record["conversation_id"])[:200],
                    revision,
                    stored_revision,
                )
                return
            if self._replace(blob, body, revision, etag):
                return
            known = None  # someone wrote in between: look again
        raise StorageUnavailable(f"record {name[:80]!r} kept changing under {MAX_ATTEMPTS} writes")

    def _create(self, blob: Any, body: bytes, revision: int) -> bool:
        self.counter.count("blob_writes")
        with storage_call("record create"):
            try:
                result = blob.upload_blob(
                    body,
                    overwrite=False,
                    metadata={"revision": str(revision)},
                    content_settings=_JSON,
                )
            except ResourceExistsError:
                return False
            except ResourceNotFoundError:  # the container is gone
                self._ready = False
                self.ensure_container()
                return False
        self._remember(blob.blob_name, revision, result["etag"])
        return True

    def _replace(self, blob: Any, body: bytes, revision: int, etag: str) -> bool:
        self.counter.count("blob_writes")
        with storage_call("record replace"):
            try:
                result = blob.upload_blob(
                    body,
                    overwrite=True,
                    metadata={"revision": str(revision)},
                    content_settings=_JSON,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                self._forget(blob.blob_name)
                return False
        self._remember(blob.blob_name, revision, result["etag"])
        return True

    def _head(self, blob: Any) -> tuple[int, str] | None:
        self.counter.count("blob_reads")
        with storage_call("record properties"):
            try:
                properties = blob.get_blob_properties()
            except ResourceNotFoundError:
                return None
        stored = properties.metadata.get("revision", "0")
        return (int(stored) if stored.isdigit() else 0), str(properties.etag)

    def _recall(self, name: str) -> tuple[int, str] | None:
        with self._lock:
            known = self._known.get(name)
            if known is not None:
                self._known.move_to_end(name)
            return known

    def _remember(self, name: str, revision: int, etag: str) -> None:
        if self._cache_size == 0:
            return
        with self._lock:
            self._known[name] = (revision, etag)
            self._known.move_to_end(name)
            while len(self._known) > self._cache_size:
                self._known.popitem(last=False)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._known.pop(name, None)

    def read(self, conversation_id: str) -> dict[str, Any] | None:
        """The stored record (for tests and tools)."""
        self.counter.count("blob_reads")
        with storage_call("record read"):
            try:
                data = self._container.download_blob(record_blob_name(conversation_id)).readall()
            except ResourceNotFoundError:
                return None
        document: dict[str, Any] = orjson.loads(data)
        return document
