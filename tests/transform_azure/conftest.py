"""Real adapters on the session's Azurite, one fresh table and set of containers per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from pydantic import SecretStr

from adapters.blob_deadletters import BlobDeadLetterSink, read_letter
from adapters.blob_records import BlobRecordSink
from adapters.opcount import OperationCounter
from adapters.settings import StorageConnection
from adapters.table_state import TableStateStore
from schemas.record import DeadLetter


def stored_records(container: ContainerClient) -> dict[str, dict[str, Any]]:
    """Every record in a records container, by conversation id (none while it does not exist)."""
    if not container.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for blob in container.list_blobs():
        document = orjson.loads(container.download_blob(blob.name).readall())
        out[document["conversation_id"]] = document
    return out


@dataclass
class AzureStorage:
    """Names and clients of one test's storage; `new_*` build adapters like a fresh process."""

    connection_string: str
    table_name: str
    records_container: str
    spill_container: str
    deadletter_container: str
    tables: TableServiceClient
    blobs: BlobServiceClient

    def new_store(
        self,
        counter: OperationCounter | None = None,
        cls: type[TableStateStore] = TableStateStore,
        **kwargs: Any,
    ) -> TableStateStore:
        store = cls(
            self.tables.get_table_client(self.table_name),
            self.blobs.get_container_client(self.spill_container),
            counter=counter or OperationCounter(),
            **kwargs,
        )
        store.ensure_table()
        return store

    def new_records(
        self, counter: OperationCounter | None = None, cls: type[BlobRecordSink] = BlobRecordSink
    ) -> BlobRecordSink:
        sink = cls(
            self.blobs.get_container_client(self.records_container),
            counter=counter or OperationCounter(),
        )
        sink.ensure_container()
        return sink

    def new_dead_letters(self) -> BlobDeadLetterSink:
        connection = StorageConnection(SecretStr(self.connection_string), None, None)
        return BlobDeadLetterSink(connection, self.deadletter_container)

    def records(self) -> dict[str, dict[str, Any]]:
        """Every stored record by conversation id."""
        return stored_records(self.blobs.get_container_client(self.records_container))

    def dead_letters(self) -> dict[str, DeadLetter]:
        """Every stored dead letter by id."""
        container = self.blobs.get_container_client(self.deadletter_container)
        if not container.exists():
            return {}
        letters = (
            read_letter(container.download_blob(b.name).readall()) for b in container.list_blobs()
        )
        return {letter.id: letter for letter in letters}


@pytest.fixture
def azure_storage(local_stack: Any) -> Iterator[AzureStorage]:
    """Fresh names on the session's Azurite; removed afterwards."""
    connection_string = local_stack.storage_connection_string
    suffix = uuid.uuid4().hex[:10]
    storage = AzureStorage(
        connection_string=connection_string,
        table_name=f"state{suffix}",
        records_container=f"conversations-{suffix}",
        spill_container=f"spill-{suffix}",
        deadletter_container=f"deadletter-{suffix}",
        tables=TableServiceClient.from_connection_string(connection_string),
        blobs=BlobServiceClient.from_connection_string(connection_string),
    )
    yield storage
    storage.tables.delete_table(storage.table_name)
    for name in (storage.records_container, storage.spill_container, storage.deadletter_container):
        container = storage.blobs.get_container_client(name)
        if container.exists():
            container.delete_container()
