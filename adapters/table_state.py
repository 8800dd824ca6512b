"""`StateStore` on Azure Table Storage (state, due index) and Blob Storage (spilled state).

The logic is `ShardedStateStore`'s; this module only speaks the SDK: point reads, one
entity-group transaction per shard per commit (replace under `If-Match` with the ETag, inserts
that fail on existing rows; its body written by `adapters.table_batch` and sent through the
TableClient's pipeline), a RowKey-range query per shard for the due index, and a container
for state beyond one entity. Failed
preconditions map to `ConcurrencyConflict` (via the base), everything transient to
`StorageUnavailable`. Clients are built once per worker and shared (they are thread-safe).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from wsgiref.handlers import format_date_time

from azure.core.exceptions import (
    DecodeError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.core.rest import HttpRequest
from azure.data.tables import EntityProperty, TableClient
from azure.storage.blob import ContainerClient

from adapters.azure_errors import storage_call
from adapters.entity import INDEX_PREFIX, LAYOUT_PARTITION, LAYOUT_ROW, STATE_SHARDS
from adapters.opcount import METRICS, OperationCounter
from adapters.sharded_state import ShardedStateStore, TransactionRefused, TransactionTooLarge
from adapters.state_plan import TableOp
from adapters.table_batch import (
    BatchResponseError,
    PartFailure,
    PartResponse,
    batch_headers,
    decode_batch_response,
    encode_changeset,
    failure_of,
)
from transform.errors import StorageUnavailable

log = logging.getLogger(__name__)

_CONFLICT_CODES = {"UpdateConditionNotSatisfied", "ConditionNotMet", "EntityAlreadyExists"}
_NOT_PRECONDITIONS = {"TableBeingDeleted"}
"""409s that say nothing about our rows (the table is going away: retry, do not re-plan)."""


class TransactionFailed(HttpResponseError):
    """A transaction refused for another reason than a precondition (storage_call maps it)."""

    def __init__(self, failure: PartFailure, response: Any = None) -> None:
        where = "the transaction" if response is not None else f"operation {failure.index}"
        super().__init__(f"{where}: {failure.message}", response=response)
        self.status_code = failure.status
        self.error_code = failure.code


class TableStateStore(ShardedStateStore):
    """Conversation state in one table (sharded) with spill blobs in one container."""

    def __init__(
        self,
        table: TableClient,
        spill: ContainerClient,
        *,
        counter: OperationCounter = METRICS,
        cache_size: int = 20_000,
        shards: int = STATE_SHARDS,
        presume_new: bool = True,
        read_only: bool = False,
    ) -> None:
        """`read_only`: never create the table or the container (tools that only look)."""
        super().__init__(counter, cache_size, shards, presume_new=presume_new)
        self._read_only = read_only
        self._table = table
        # The SDK's own account URL (private, pinned in requirements.txt; a contract test
        # compares our transaction bytes with the SDK's, so an upgrade that moves it fails there).
        self._account_url = f"{table.scheme}://{table._primary_hostname}"
        """Where `$batch` goes, as the SDK computes it (Azurite's path-style account included)."""
        self._spill = spill
        self._ready_lock = threading.Lock()
        self._table_ready = False
        self._spill_ready = False

    # ------------------------------------------------------------------ setup
    def ensure_table(self) -> None:
        """Create the table if need be and adopt its shard count (once per process).

        A new table records the shard count this store was built with; an existing one keeps
        its own, whatever the setting says now, because every key depends on it.
        """
        with self._ready_lock:
            if self._table_ready:
                return
            with (
                storage_call(f"create table {self._table.table_name}"),
                contextlib.suppress(ResourceExistsError),
            ):
                self._table.create_table()
            self.shards = self._layout_shards()
            self._table_ready = True

    def _layout_shards(self) -> int:
        layout = {"PartitionKey": LAYOUT_PARTITION, "RowKey": LAYOUT_ROW, "Shards": self.shards}
        with storage_call("layout row"):
            self.counter.count("table_reads")
            try:
                stored = self._table.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)
            except ResourceNotFoundError:
                self.counter.count("table_writes")
                try:
                    self._table.create_entity(layout)
                    return self.shards
                except ResourceExistsError:
                    stored = self._table.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)
        shards = int(_plain(stored)["Shards"])
        if shards != self.shards:
            log.info(
                "table %s keeps its layout shards=%s (configured %s)",
                self._table.table_name,
                shards,
                self.shards,
            )
        return shards

    def _ensure_spill(self) -> None:
        with self._ready_lock:
            if self._spill_ready:
                return
            with (
                storage_call(f"create container {self._spill.container_name}"),
                contextlib.suppress(ResourceExistsError),
            ):
                self._spill.create_container()
            self._spill_ready = True

    # ------------------------------------------------------------------ primitives
    def _read_row(
        self, partition_key: str, row_key: str, *, meta_only: bool = False
    ) -> tuple[dict[str, Any], str] | None:
        self.counter.count("table_reads")
        select = ["Slot", "Spill"] if meta_only else None
        with storage_call("state read"):
            try:
                entity = self._table.get_entity(partition_key, row_key, select=select)
            except ResourceNotFoundError as e:
                if _is_table_missing(e) and not self._read_only:
                    self.ensure_table()
                return None
        return _plain(entity), str(entity.metadata["etag"])

    def _submit(self, partition_key: str, ops: Sequence[TableOp]) -> list[str | None]:
        if not ops:
            return []  # as the SDK answered an empty transaction
        for attempt in range(2):
            self.counter.count("table_writes")
            self.counter.count("table_entities", len(ops))
            with storage_call("state transaction"):
                answers = self._send_changeset(ops)
                failed = next(
                    (answer for answer in answers if not 200 <= answer.status < 300), None
                )
                if failed is None:
                    return _etags(ops, answers)
                failure = failure_of(failed)
                if failure.code == "TableNotFound" and attempt == 0:
                    # Deleted under us: recreate it, with the layout we already use.
                    self._table_ready = False
                    self.ensure_table()
                    continue
                if failure.status == 413:
                    raise TransactionTooLarge(failure.message)
                if failure.code not in _NOT_PRECONDITIONS and (
                    failure.code in _CONFLICT_CODES or failure.status in (409, 412)
                ):
                    raise TransactionRefused(failure.index, "conflict", failure.code)
                if failure.code == "ResourceNotFound" or failure.status == 404:
                    raise TransactionRefused(failure.index, "missing", failure.code)
                raise TransactionFailed(failure)
        raise StorageUnavailable(f"table {self._table.table_name} keeps disappearing")

    def _send_changeset(self, ops: Sequence[TableOp]) -> list[PartResponse]:
        """One entity-group transaction through the TableClient's pipeline; its answers.

        The body is ours (`adapters.table_batch`: the SDK's bytes at a fraction of its CPU);
        authentication, retries and the transport are the client's. A refused transaction is
        still a 202 whose one part says why; a 413 is the whole request's size; any other
        status is the whole request's failure (authorization, throttling, …), with the
        service's code and message kept as the SDK's `_decode_error` kept them.
        """
        table = self._table
        suffix = uuid.uuid4()
        changeset = encode_changeset(
            self._account_url,
            table.table_name,
            ops,
            api_version=table.api_version,
            date=format_date_time(time.time()),
            batch_boundary=f"batch_{suffix}",
            changeset_boundary=f"changeset_{suffix}",
        )
        request = HttpRequest(
            "POST",
            f"{self._account_url}/$batch",
            headers=batch_headers(table.api_version, changeset.content_type),
            content=changeset.body,
        )
        response = table._client.send_request(request, stream=True)  # its pipeline (private)
        body = response.read()  # the whole answer, so the connection goes back to the pool
        if response.status_code == 413:
            raise TransactionTooLarge(f"the transaction request was too large: {body[:200]!r}")
        if response.status_code != 202:
            headers = {name.lower(): value for name, value in response.headers.items()}
            whole = failure_of(PartResponse(response.status_code, headers, body))
            raise TransactionFailed(whole, response=response)
        try:
            return decode_batch_response(response.headers.get("Content-Type", ""), body)
        except BatchResponseError as e:
            raise DecodeError(f"a transaction's answer: {e}", response=response) from e

    def _query_index(self, partition_key: str, upper: str, limit: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with storage_call("due-index query"):
            pages = self._table.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                parameters={"pk": partition_key, "lo": INDEX_PREFIX, "hi": upper},
                select=["RowKey", "ConversationId"],
                results_per_page=min(max(limit, 1), 1000),
            ).by_page()
            try:
                for page in pages:
                    self.counter.count("table_queries")
                    found.extend(_plain(entity) for entity in page)
                    if len(found) >= limit:
                        break
            except ResourceNotFoundError as e:
                if not _is_table_missing(e):
                    raise
                if not self._read_only:
                    self.ensure_table()
        for row in found:
            row.setdefault("PartitionKey", partition_key)
        return found[:limit]

    def _spill_write(self, name: str, data: bytes) -> None:
        self._ensure_spill()
        self.counter.count("blob_writes")
        with storage_call("spill write"):
            self._spill.upload_blob(name, data, overwrite=True)

    def _spill_read(self, name: str) -> bytes | None:
        self.counter.count("blob_reads")
        with storage_call("spill read"):
            try:
                return self._spill.download_blob(name).readall()
            except ResourceNotFoundError:
                return None

    def _scan_rows(self, partition_key: str) -> Iterator[tuple[dict[str, Any], str]]:
        with storage_call("state scan"):
            pages = self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition_key}
            ).by_page()
            try:
                for page in pages:
                    self.counter.count("table_queries")
                    for entity in page:
                        yield _plain(entity), str(entity.metadata["etag"])
            except ResourceNotFoundError as e:
                if not _is_table_missing(e):
                    raise

    def _spill_names(self, prefix: str) -> list[str]:
        self.counter.count("blob_reads")
        with storage_call("spill list"):
            try:
                return [blob.name for blob in self._spill.list_blobs(name_starts_with=prefix)]
            except ResourceNotFoundError:
                return []  # no container: nothing ever spilled

    def _spill_delete(self, name: str, *, prefix: bool = False) -> None:
        with storage_call("spill delete"):
            names = [name]
            if prefix:
                self.counter.count("blob_reads")
                names = [blob.name for blob in self._spill.list_blobs(name_starts_with=name)]
            for found in names:
                self.counter.count("blob_writes")
                with contextlib.suppress(ResourceNotFoundError):
                    self._spill.delete_blob(found)


def _etags(ops: Sequence[TableOp], answers: list[PartResponse]) -> list[str | None]:
    """Each operation's new ETag; an answer that does not fit the operations is an error
    (retried as StorageUnavailable), never a success with holes."""
    if len(answers) != len(ops):
        raise DecodeError(f"{len(answers)} answers to a transaction of {len(ops)} operations")
    etags = [answer.etag for answer in answers]
    for index, (op, etag) in enumerate(zip(ops, etags, strict=True)):
        if etag is None and op.kind != "delete":
            raise DecodeError(f"no ETag in the answer to operation {index} ({op.kind})")
    return etags


def _error_code(error: Exception) -> str:
    """The service's error code; the SDK gives some as `TableErrorCode` members, whose `str()`
    is the member's name, not its value."""
    code = getattr(error, "error_code", None) or ""
    return str(getattr(code, "value", code))


def _is_table_missing(error: ResourceNotFoundError) -> bool:
    return _error_code(error) == "TableNotFound"


def _plain(entity: Any) -> dict[str, Any]:
    """An entity as plain values (the SDK hands Int64 back wrapped)."""
    return {k: v.value if isinstance(v, EntityProperty) else v for k, v in entity.items()}
