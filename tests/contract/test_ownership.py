"""Who closes what: a reader built with its own SDK clients closes them, and nothing it was given.

Against Azurite through the real SDKs. The signals are the SDKs' own. azure-core's requests
transport drops its session on `close`, and a request on it afterwards fails with "HTTP
transport has already been closed"; a container or table client shares its service client's
transport, so a reader's next call shows whether the service client was closed. And a session
dropped without `close` keeps its pooled sockets open until the cyclic garbage collector runs.
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import psutil
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from adapters.blob_records import BlobRecordSink
from adapters.checkpoints import CONTAINER as CHECKPOINTS
from adapters.checkpoints import BlobCheckpointStore, HubAddress
from adapters.containers import BlobContainerReader
from adapters.deadletter_store import DeadLetterStore
from adapters.entity import SPILL_CONTAINER
from adapters.opcount import OperationCounter
from adapters.owned import owning
from adapters.record_reader import RecordReader
from adapters.settings import HubSettings, TransformSettings, Tuning
from adapters.state_reader import ShardedStateReader
from adapters.table_state import TableStateStore
from adapters.wiring import (
    checkpoint_store,
    deadletter_store,
    output_of,
    record_reader,
    state_reader,
    transform_runtime,
)
from devstack.stack import Stack
from simulator.run.idle import PipelineProbe
from simulator.verify.blob_source import BlobRecordSource

pytestmark = pytest.mark.stack

CLOSED = "transport has already been closed"
ADDRESS = HubAddress("localhost", "test-events", "$Default")
LETTER = "ingest/2024/01/01/none.json"


@pytest.fixture
def settings(local_stack: Stack) -> TransformSettings:
    """A table and containers of this test's own, the table created (the readers never do)."""
    suffix = uuid.uuid4().hex[:10]
    env = {
        "StateStorage": local_stack.storage_connection_string,
        "STATE_TABLE_NAME": f"owned{suffix}",
        "RECORDS_CONTAINER": f"owned-records-{suffix}",
        "DEADLETTER_CONTAINER": f"owned-deadletter-{suffix}",
    }
    chosen = TransformSettings.from_env(env)
    runtime = transform_runtime(chosen, Tuning(cache_size=0), OperationCounter())
    runtime.prepare()  # the table with its layout row, and the records container
    runtime.close()
    return chosen


@pytest.fixture
def hub(local_stack: Stack) -> HubSettings:
    return HubSettings.from_env({
        "EventHubConnection": local_stack.eventhub_connection_string,
        "AzureWebJobsStorage": local_stack.storage_connection_string,
        "EVENTHUB_NAME": "test-events",
    })  # fmt: skip


def _wired(
    settings: TransformSettings, hub: HubSettings
) -> list[tuple[str, Callable[[], Any], Callable[[Any], object]]]:
    """Each reader the wiring builds with its own clients, and one call that reaches storage."""
    output = output_of(settings)
    return [
        ("records", lambda: record_reader(output), lambda r: r.read("c-1")),
        ("dead letters", lambda: deadletter_store(output), lambda s: s.read(LETTER)),
        ("checkpoints", lambda: checkpoint_store(hub), lambda s: s.checkpoints(ADDRESS)),
        ("state", lambda: state_reader(settings), lambda r: r.stored("c-1")),
    ]


def test_a_wired_reader_closes_its_clients_when_its_with_ends(
    settings: TransformSettings, hub: HubSettings
) -> None:
    for what, build, use in _wired(settings, hub):
        with build() as reader:
            assert not use(reader), what  # nothing stored: reads as empty, through an open client
        with pytest.raises(ValueError, match=CLOSED):
            use(reader)
        reader.close()  # a second close closes nothing (and does not fail)


def test_a_reader_given_a_client_leaves_it_open(local_stack: Stack) -> None:
    name = f"given-{uuid.uuid4().hex[:10]}"
    connection = local_stack.storage_connection_string
    with (
        BlobServiceClient.from_connection_string(connection) as blobs,
        TableServiceClient.from_connection_string(connection) as tables,
    ):
        container = blobs.get_container_client(name)
        container.create_container()
        tables.create_table(name.replace("-", ""))
        store = TableStateStore(
            tables.get_table_client(name.replace("-", "")),
            blobs.get_container_client(SPILL_CONTAINER),
            counter=OperationCounter(),
            cache_size=0,
            read_only=True,
        )
        readers: list[tuple[Any, Callable[[Any], object]]] = [
            (RecordReader(BlobContainerReader(container, hint="-")), lambda r: r.read("c-1")),
            (DeadLetterStore(BlobContainerReader(container, hint="-")), lambda s: s.read(LETTER)),
            (BlobCheckpointStore(container), lambda s: s.checkpoints(ADDRESS)),
            (ShardedStateReader(store, "given"), lambda r: r.stored("c-1")),
        ]
        for reader, use in readers:
            with reader:
                use(reader)
            assert not use(reader)  # the caller's clients still answer
        assert container.exists()
        assert tables.get_table_client(name.replace("-", "")).query_entities("PartitionKey eq 'x'")
        container.delete_container()
        tables.delete_table(name.replace("-", ""))

        # Handed over as `owned`, the same service client is the reader's to close.
        blobs_owned = BlobServiceClient.from_connection_string(connection)
        owned = RecordReader(
            BlobContainerReader(blobs_owned.get_container_client(name), hint="-"),
            owned=owning(blobs_owned),
        )
        with owned:
            owned.read("c-1")
        with pytest.raises(ValueError, match=CLOSED):
            blobs_owned.get_container_client(name).exists()
        assert blobs.get_container_client(name).exists() is False  # the caller's: still open


def test_the_transform_runtime_closes_its_table_and_blob_clients(
    settings: TransformSettings,
) -> None:
    runtime = transform_runtime(settings, Tuning(cache_size=0), OperationCounter())
    runtime.prepare()
    records = runtime.records
    assert isinstance(records, BlobRecordSink)
    assert runtime.store.load("c-1") is None
    assert records.read("c-1") is None
    runtime.close()
    with pytest.raises(ValueError, match=CLOSED):
        runtime.store.load("c-1")  # the table service client
    with pytest.raises(ValueError, match=CLOSED):
        records.read("c-1")  # the blob service client
    runtime.close()


def test_the_simulator_closes_the_readers_it_builds_and_not_those_it_is_given(
    local_stack: Stack, settings: TransformSettings
) -> None:
    output = output_of(settings)
    with BlobRecordSource(output) as source:
        assert list(source.dead_letters()) == []
    with pytest.raises(ValueError, match=CLOSED):
        list(source.dead_letters())

    with record_reader(output) as records, deadletter_store(output) as letters:
        with BlobRecordSource(output, records=records, letters=letters) as given:
            assert given.count() == 0
        assert records.read("c-1") is None  # still open: the caller's
        assert list(letters.letters()) == []

    with PipelineProbe.connect(
        storage_connection_string=local_stack.storage_connection_string,
        eventhub_connection_string=local_stack.eventhub_connection_string,
        eventhub_name="test-events",
        consumer_group="$Default",
        state_table=settings.state_table,
        horizon_ms=0,
    ) as probe:
        assert probe.states.open_conversations(0, 10) == 0
    with pytest.raises(ValueError, match=CLOSED):
        probe.states.open_conversations(0, 10)


def _established(ports: set[int]) -> int:
    """This process's open TCP connections to those ports."""
    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port in ports and c.status == psutil.CONN_ESTABLISHED
    )


def test_readers_closed_in_a_loop_hold_no_sockets(
    local_stack: Stack, settings: TransformSettings, hub: HubSettings
) -> None:
    """The SDK clients sit in reference cycles: a reader dropped unclosed keeps its socket until
    the cyclic collector runs (urllib3 then closes it, so no ResourceWarning says so). Held off
    here, the sockets show what a loop of readers keeps open."""
    connection = local_stack.storage_connection_string
    output = output_of(settings)
    with BlobServiceClient.from_connection_string(connection) as blobs:
        for name in (output.records_container, output.deadletter_container, CHECKPOINTS):
            with contextlib.suppress(ResourceExistsError):
                blobs.create_container(name)
    # Calls that succeed: a 404's response keeps its own socket until collected, closed or not.
    looks: list[tuple[Callable[[], Any], Callable[[Any], object]]] = [
        (lambda: record_reader(output), lambda r: r.listed()),
        (lambda: deadletter_store(output), lambda s: list(s.list())),
        (lambda: checkpoint_store(hub), lambda s: s.checkpoints(ADDRESS)),
        (lambda: state_reader(settings), lambda r: r.open_conversations(0, 10)),
    ]
    ports = {
        urlparse(part.split("=", 1)[1]).port or 0
        for part in connection.split(";")
        if part.startswith(("BlobEndpoint=", "TableEndpoint="))
    }

    def loop(close: bool) -> int:
        before = _established(ports)
        for _ in range(3):
            for build, use in looks:
                reader = build()
                use(reader)
                if close:
                    reader.close()
                del reader
        return _established(ports) - before

    gc.collect()
    gc.disable()
    try:
        assert loop(close=True) == 0
        # The check can fail: the same readers left open keep a socket each.
        assert loop(close=False) >= len(looks) * 3
    finally:
        gc.enable()
        gc.collect()
