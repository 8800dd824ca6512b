"""One contract suite for the storage ports, run against the in-memory twins and Azurite.

The `azurite` parameters are marked `stack` and use the session's local stack (Azurite on free
ports); every test gets its own table and containers, so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from adapters.blob_records import BlobRecordSink
from adapters.memory import InMemoryRecordSink, InMemoryStateStore
from adapters.opcount import OperationCounter
from adapters.sharded_state import ShardedStateStore
from adapters.table_state import TableStateStore

BACKENDS = ["memory", pytest.param("azurite", marks=pytest.mark.stack)]


@dataclass
class Storage:
    """Factories for stores over one shared storage (each store is a separate "process")."""

    backend: str
    new_store: Callable[..., ShardedStateStore]
    new_sink: Callable[..., Any]
    read_record: Callable[[str], dict[str, Any] | None]
    spill_names: Callable[[], list[str]]
    record_metadata: Callable[[str], dict[str, str]]


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """The same storage seen through fresh adapter instances."""
    if request.param == "memory":
        yield _memory()
        return
    stack = request.getfixturevalue("local_stack")
    yield from _azurite(stack.storage_connection_string)


def _memory() -> Storage:
    shared = InMemoryStateStore(cache_size=0)
    sink = InMemoryRecordSink()

    def new_store(**kwargs: Any) -> ShardedStateStore:
        kwargs.setdefault("counter", OperationCounter())
        return shared.another_process(**kwargs)

    return Storage(
        backend="memory",
        new_store=new_store,
        new_sink=lambda **_: sink,
        read_record=sink.records.get,
        spill_names=lambda: sorted(shared.spill_blobs),
        record_metadata=lambda cid: {"revision": str(sink.records[cid]["revision"])},
    )


def _azurite(connection_string: str) -> Iterator[Storage]:
    suffix = uuid.uuid4().hex[:10]
    tables = TableServiceClient.from_connection_string(connection_string)
    blobs = BlobServiceClient.from_connection_string(connection_string)
    table_name = f"contract{suffix}"
    spill_name = f"spill-{suffix}"
    records_name = f"records-{suffix}"

    def new_store(**kwargs: Any) -> ShardedStateStore:
        kwargs.setdefault("counter", OperationCounter())
        store = TableStateStore(
            tables.get_table_client(table_name), blobs.get_container_client(spill_name), **kwargs
        )
        store.ensure_table()
        return store

    def new_sink(**kwargs: Any) -> BlobRecordSink:
        kwargs.setdefault("counter", OperationCounter())
        sink = BlobRecordSink(blobs.get_container_client(records_name), **kwargs)
        sink.ensure_container()
        return sink

    reader = new_sink()

    def spill_names() -> list[str]:
        container = blobs.get_container_client(spill_name)
        if not container.exists():
            return []
        return sorted(blob.name for blob in container.list_blobs())

    def record_metadata(cid: str) -> dict[str, str]:
        from adapters.blob_records import record_blob_name

        client = blobs.get_blob_client(records_name, record_blob_name(cid))
        return dict(client.get_blob_properties().metadata)

    yield Storage(
        backend="azurite",
        new_store=new_store,
        new_sink=new_sink,
        read_record=reader.read,
        spill_names=spill_names,
        record_metadata=record_metadata,
    )
    tables.delete_table(table_name)
    for name in (spill_name, records_name):
        container = blobs.get_container_client(name)
        if container.exists():
            container.delete_container()
