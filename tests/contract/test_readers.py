"""One contract suite for the readers of stored data, run on the in-memory twins and Azurite.

Checkpoints and ownership (`CheckpointStore`), a container's blobs (`ContainerReader`) with
the dead letters and records read through it, and the conversation state read without being
the consumer (`ShardedStateReader` over a read-only store): what ops, the telemetry probe and
the simulator read, the twin reads the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from pydantic import SecretStr

from adapters.blob_deadletters import BlobDeadLetterSink, blob_body, blob_metadata, blob_name
from adapters.blob_records import BlobRecordSink, record_blob_name
from adapters.checkpoints import (
    BlobCheckpointStore,
    Checkpoint,
    CheckpointStore,
    HubAddress,
    InMemoryCheckpointStore,
    live_owners,
    start_checkpoint,
)
from adapters.containers import BlobContainerReader, ContainerReader, InMemoryContainer
from adapters.deadletter_store import REPLAYED_AT, DeadLetterStore
from adapters.entity import SPILL_CONTAINER, index_entity, shard_of
from adapters.memory import InMemoryRecordSink, InMemoryStateStore
from adapters.opcount import OperationCounter
from adapters.record_reader import RecordReader
from adapters.settings import StorageConnection
from adapters.sharded_state import ShardedStateStore
from adapters.state_plan import TableOp
from adapters.state_reader import ShardedStateReader
from adapters.table_state import TableStateStore
from schemas.record import DeadLetter, DeadLetterSource
from tests.contract.states import make_state
from transform.errors import ConcurrencyConflict
from transform.keys import safe_key
from transform.ports import Put
from transform.state import encode_state

BACKENDS = ["memory", pytest.param("azurite", marks=pytest.mark.stack)]
ADDRESS = HubAddress("localhost:5673", "Genesys-Events", "$Default")
NOW = 1_700_000_000_000
MINUTE = 60_000


def _suffix() -> str:
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------- checkpoints
@dataclass
class Checkpoints:
    store: CheckpointStore
    claim: Callable[[str, str], None]
    """Write an ownership record (partition, owner id), as a consumer does."""


@pytest.fixture(params=BACKENDS)
def checkpoints(request: pytest.FixtureRequest) -> Iterator[Checkpoints]:
    if request.param == "memory":
        memory = InMemoryCheckpointStore(now=datetime.now(UTC))
        yield Checkpoints(memory, lambda p, owner: memory.claim(ADDRESS, p, owner))
        return
    stack = request.getfixturevalue("local_stack")
    blobs = BlobServiceClient.from_connection_string(stack.storage_connection_string)
    container = blobs.get_container_client(f"checkpoints-{_suffix()}")

    def claim(partition: str, owner: str) -> None:
        if not container.exists():
            container.create_container()
        name = f"{ADDRESS.prefix('ownership')}{partition}"
        container.upload_blob(name, b"", overwrite=True, metadata={"ownerid": owner})

    yield Checkpoints(BlobCheckpointStore(container), claim)
    if container.exists():
        container.delete_container()


def test_checkpoints_read_back_as_written(checkpoints: Checkpoints) -> None:
    store = checkpoints.store
    assert store.checkpoints(ADDRESS) == {}  # nothing yet (no container, in Azure)
    store.write(ADDRESS, Checkpoint("0", 41, "4100"))
    store.write(ADDRESS, start_checkpoint("1"))
    store.write(ADDRESS, Checkpoint("0", 42, "4200"))
    found = store.checkpoints(ADDRESS)
    assert {p: (c.sequence_number, c.offset) for p, c in found.items()} == {
        "0": (42, "4200"),
        "1": (-1, "-1"),
    }
    assert found["1"].at_start and not found["0"].at_start
    other = HubAddress(ADDRESS.namespace, ADDRESS.hub, "cg1")
    assert store.checkpoints(other) == {}, "another consumer group's checkpoints are apart"


def test_ownership_lists_claims_and_live_owners_skip_released_ones(
    checkpoints: Checkpoints,
) -> None:
    checkpoints.claim("0", "host-a")
    checkpoints.claim("1", "")
    owners = checkpoints.store.ownership(ADDRESS)
    assert {p: o.owner_id for p, o in owners.items()} == {"0": "host-a", "1": ""}
    held = live_owners(owners, datetime.now(UTC) + timedelta(seconds=1))
    assert [o.partition for o in held] == ["0"]
    assert live_owners(owners, datetime.now(UTC) + timedelta(minutes=5)) == []


# ---------------------------------------------------------------------- containers
@dataclass
class Output:
    letters: ContainerReader
    records: ContainerReader
    write_letter: Callable[[DeadLetter], None]
    write_record: Callable[[dict[str, Any]], None]


@pytest.fixture(params=BACKENDS)
def output(request: pytest.FixtureRequest) -> Iterator[Output]:
    if request.param == "memory":
        letters, records = InMemoryContainer("deadletter"), InMemoryContainer("conversations")
        sink = InMemoryRecordSink()

        def write_record(record: dict[str, Any]) -> None:
            sink.write(record)
            stored = sink.records[record["conversation_id"]]
            records.put(
                record_blob_name(record["conversation_id"]),
                orjson.dumps(stored),
                {"revision": str(stored["revision"])},
            )

        def write_letter(letter: DeadLetter) -> None:
            name = blob_name(letter)
            if name not in letters.blobs:  # create-only, like the Blob sink
                now = datetime.now(UTC)
                letters.put(name, blob_body(letter), blob_metadata(letter), now, created=now)

        yield Output(letters, records, write_letter, write_record)
        return
    stack = request.getfixturevalue("local_stack")
    blobs = BlobServiceClient.from_connection_string(stack.storage_connection_string)
    suffix = _suffix()
    letters_name, records_name = f"letters-{suffix}", f"records-{suffix}"
    connection = StorageConnection(SecretStr(stack.storage_connection_string), None, None)
    letter_sink = BlobDeadLetterSink(connection, letters_name)
    record_sink = BlobRecordSink(
        blobs.get_container_client(records_name), counter=OperationCounter()
    )
    record_sink.ensure_container()
    hint = "check the local stack"
    yield Output(
        BlobContainerReader(blobs.get_container_client(letters_name), hint=hint),
        BlobContainerReader(blobs.get_container_client(records_name), hint=hint),
        letter_sink.write,
        record_sink.write,
    )
    letter_sink.close()
    for name in (letters_name, records_name):
        container = blobs.get_container_client(name)
        if container.exists():
            container.delete_container()


def letter(letter_id: str, day: str, *, stage: str = "transform") -> DeadLetter:
    return DeadLetter(
        id=letter_id,
        stage=stage,  # type: ignore[arg-type]
        reason="invalid-json",
        error="x",
        received_at=f"{day}T10:00:00.000Z",
        source=DeadLetterSource(line=1),
        raw="{not json",
    )


def test_an_empty_or_missing_container_lists_nothing(output: Output) -> None:
    assert list(output.letters.list()) == []
    assert output.letters.read("nope.json") is None
    store = DeadLetterStore(output.letters)
    assert list(store.letters()) == [] and store.find("nope") is None


def test_dead_letters_list_by_prefix_find_read_mark_and_keep_one_per_id(output: Output) -> None:
    output.write_letter(letter("transform-a", "2026-11-01"))
    output.write_letter(letter("transform-a", "2026-11-02"))  # a retry on a later day
    output.write_letter(letter("ingest-b", "2026-11-02", stage="ingest"))
    store = DeadLetterStore(output.letters)
    listed = list(store.list())
    assert [item.name for item in listed] == [
        "ingest/2026/11/02/ingest-b.json",
        "transform/2026/11/01/transform-a.json",
        "transform/2026/11/02/transform-a.json",
    ]
    assert [i.deadletter_id for i in store.list("transform/")] == ["transform-a"] * 2
    assert [i.reason for i in store.list(keep=lambda i: i.stage == "ingest")] == ["invalid-json"]
    assert len(list(store.list(limit=1))) == 1
    assert store.find("ingest-b") == "ingest/2026/11/02/ingest-b.json"
    read = store.read("ingest/2026/11/02/ingest-b.json")
    assert read is not None and read[0].id == "ingest-b" and read[1]["stage"] == "ingest"
    store.mark_replayed(listed[0].name, read[1], "accepted", datetime(2026, 11, 3, tzinfo=UTC))
    marked = next(store.list("ingest/"))
    assert marked.replayed_at == "2026-11-03T00:00:00Z"
    assert store.read(marked.name) is not None
    assert store.read(marked.name)[1][REPLAYED_AT] == "2026-11-03T00:00:00Z"  # type: ignore[index]
    letters = [value for _, value in store.letters()]
    assert sorted(v.id for v in letters if isinstance(v, DeadLetter)) == ["ingest-b", "transform-a"]


def test_records_read_one_with_metadata_or_all(output: Output) -> None:
    first = {"conversation_id": "chat/42#x", "revision": 1, "status": "complete"}
    output.write_record(first)
    output.write_record({**first, "revision": 2})
    output.write_record({"conversation_id": "c-2", "revision": 1})
    reader = RecordReader(output.records)
    assert reader.read("chat/42#x") == {**first, "revision": 2}
    assert reader.metadata("chat/42#x")["revision"] == "2"
    assert reader.read("missing") is None and reader.metadata("missing") == {}
    assert sorted(reader.listed()) == sorted(
        [record_blob_name("chat/42#x"), record_blob_name("c-2")]
    )
    contents = dict(reader.contents())
    assert all(isinstance(data, bytes) for data in contents.values()) and len(contents) == 2


# ---------------------------------------------------------------------- state
@dataclass
class States:
    writer: ShardedStateStore
    reader: Callable[[], ShardedStateReader]
    missing: Callable[[], ShardedStateReader]
    """A reader of a table nobody made."""
    missing_table_exists: Callable[[], bool]
    row_keys: Callable[[], set[tuple[str, str]]]
    """Every (PartitionKey, RowKey) in the table."""
    spill_names: Callable[[], set[str]]


@pytest.fixture(params=BACKENDS)
def states(request: pytest.FixtureRequest) -> Iterator[States]:
    if request.param == "memory":
        twin = InMemoryStateStore(shards=2, cache_size=0)
        twin.ensure_table()
        yield States(
            twin,
            lambda: ShardedStateReader(twin.another_process(shards=4, cache_size=0), "memory"),
            lambda: ShardedStateReader(InMemoryStateStore(cache_size=0), "memory"),
            lambda: False,  # the twin has no tables to create
            lambda: set(twin.rows()),
            lambda: set(twin.spill_blobs),
        )
        return
    stack = request.getfixturevalue("local_stack")
    tables = TableServiceClient.from_connection_string(stack.storage_connection_string)
    blobs = BlobServiceClient.from_connection_string(stack.storage_connection_string)
    table_name, missing_name = f"reader{_suffix()}", f"missing{_suffix()}"
    spill = blobs.get_container_client(f"{SPILL_CONTAINER}-{_suffix()}")

    def read_only(name: str) -> ShardedStateReader:
        store = TableStateStore(
            tables.get_table_client(name),
            spill,
            counter=OperationCounter(),
            cache_size=0,
            presume_new=False,
            read_only=True,
        )
        return ShardedStateReader(store, name)

    writer = TableStateStore(
        tables.get_table_client(table_name), spill, counter=OperationCounter(), shards=2
    )
    writer.ensure_table()

    def row_keys() -> set[tuple[str, str]]:
        rows = tables.get_table_client(table_name).list_entities(select=["PartitionKey", "RowKey"])
        return {(row["PartitionKey"], row["RowKey"]) for row in rows}

    def spill_names() -> set[str]:
        return {blob.name for blob in spill.list_blobs()} if spill.exists() else set()

    yield States(
        writer,
        lambda: read_only(table_name),
        lambda: read_only(missing_name),
        lambda: any(t.name == missing_name for t in tables.list_tables()),
        row_keys,
        spill_names,
    )
    tables.delete_table(table_name)
    if spill.exists():
        spill.delete_container()


def test_a_reader_adopts_the_layout_counts_open_conversations_and_inspects(
    states: States,
) -> None:
    ids = ["open-1", "open-2", "written-long-ago", "chat/42#x"]
    deadlines = {"open-1": NOW + MINUTE, "open-2": NOW + 5 * MINUTE, "chat/42#x": NOW}
    deadlines["written-long-ago"] = NOW + 7 * 24 * 60 * MINUTE  # waiting for its purge
    result = states.writer.commit([Put(make_state(i), None, deadlines[i]) for i in ids], NOW)
    assert set(result.etags) == set(ids)
    reader = states.reader()
    assert reader.adopt_layout() == 2, "the table's own shard count, not the reader's default"
    assert reader.open_conversations(NOW + 10 * MINUTE, 1000) == 3
    assert reader.open_conversations(NOW + 10 * MINUTE, 2) == 2
    assert reader.open_conversations(NOW - MINUTE, 1000) == 0
    stored = reader.stored("chat/42#x")
    assert stored is not None
    assert stored.state.conversation_id == "chat/42#x" and stored.etag == result.etags["chat/42#x"]
    assert stored.row["partition_key"] == shard_of("chat/42#x", 2)
    assert stored.row["deadline"] == NOW and stored.row["revision"] == 0
    assert reader.stored("nobody") is None


def test_a_reader_of_a_missing_table_sees_nothing_and_creates_nothing(states: States) -> None:
    reader = states.missing()
    assert reader.open_conversations(NOW, 1000) == 0
    assert reader.stored("anyone") is None
    assert reader.adopt_layout() == 4, "no layout recorded: the default stays"
    assert not states.missing_table_exists()


# ---------------------------------------------------------------------- erasure
def test_dead_letters_keep_their_creation_time_and_every_copy_deletes(output: Output) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    output.write_letter(letter("transform-a", "2026-11-01"))
    output.write_letter(letter("transform-a", "2026-11-02"))  # a retry on a later day
    output.write_letter(letter("ingest-b", "2026-11-02", stage="ingest"))
    store = DeadLetterStore(output.letters)
    listed = list(store.list())
    assert all(item.created is not None and before < item.created for item in listed)
    first = listed[0]
    store.mark_replayed(first.name, {}, "accepted", datetime(2026, 11, 3, tzinfo=UTC))
    marked = next(item for item in store.list() if item.name == first.name)
    assert marked.created == first.created, "a replay's mark does not extend the retention"
    copies = [name for name, data in store.every_blob() if isinstance(data, bytes)]
    assert len(copies) == 3 and len(list(store.letters())) == 2
    assert store.exists(first.name)
    assert store.delete(first.name) is True
    assert store.delete(first.name) is False, "gone already is not an error"
    assert not store.exists(first.name)
    assert [item.name for item in store.list()] == [item.name for item in listed[1:]]


def test_a_record_deletes_and_is_no_longer_stored(output: Output) -> None:
    output.write_record({"conversation_id": "chat/42#x", "revision": 1})
    output.write_record({"conversation_id": "c-2", "revision": 1})
    reader = RecordReader(output.records)
    assert reader.stored("chat/42#x") and sorted(reader.listed()) == sorted(
        [record_blob_name("chat/42#x"), record_blob_name("c-2")]
    )
    assert reader.delete("chat/42#x") is True
    assert reader.delete("chat/42#x") is False
    assert not reader.stored("chat/42#x") and reader.read("chat/42#x") is None
    assert list(reader.listed()) == [record_blob_name("c-2")]
    assert RecordReader(output.records).read("c-2") == {"conversation_id": "c-2", "revision": 1}


def test_state_scans_finds_footprints_and_erases_every_row_and_blob(states: States) -> None:
    writer = states.writer
    ids = ["keep-me", "chat/42#x", "x" * 600]
    states_by_id = {i: make_state(i) for i in ids}
    states_by_id["huge"] = make_state("huge", events=50, noise_bytes=30_000)  # spills
    result = writer.commit([Put(st, None, NOW + MINUTE) for st in states_by_id.values()], NOW)
    assert set(result.etags) == set(states_by_id)
    # Left-overs a crash or a hand edit could leave: an orphan spill blob, a stray index row.
    writer._spill_write(f"{safe_key('ghost')}/orphan", b"old state")
    writer._submit(shard_of("ghost", 2), [TableOp("create", index_entity("ghost", NOW, 2))])
    reader = states.reader()

    scanned = dict(reader.scan())
    assert set(scanned) == set(states_by_id)
    assert all(
        encode_state(scanned[i]) == encode_state(states_by_id[i])  # type: ignore[arg-type]
        for i in states_by_id
    )
    found = reader.footprints([*states_by_id, "ghost", "nobody"])
    assert found["huge"].state_etag == result.etags["huge"] and len(found["huge"].spill_blobs) == 1
    assert all(len(found[i].index_rows) == 1 and found[i].state_rows == 1 for i in states_by_id)
    assert found["ghost"].state_etag is None and len(found["ghost"].index_rows) == 1
    assert found["ghost"].spill_blobs == (f"{safe_key('ghost')}/orphan",)
    assert found["nobody"].empty

    for conversation_id in ["chat/42#x", "x" * 600, "huge", "ghost"]:
        erased = reader.erase(found[conversation_id])
        assert erased == found[conversation_id]
    left = reader.footprints(list(found))
    assert [i for i, fp in left.items() if not fp.empty] == ["keep-me"]
    keep_rows = {
        (shard_of("keep-me", 2), safe_key("keep-me")),
        (shard_of("keep-me", 2), found["keep-me"].index_rows[0]),
    }
    assert {key for key in states.row_keys() if key[0] != "!meta"} == keep_rows
    assert states.spill_names() == set()
    assert [i for i, _ in reader.scan()] == ["keep-me"]


def test_erasing_state_the_consumer_changed_meanwhile_looks_again(states: States) -> None:
    writer = states.writer
    etag = writer.save(make_state("busy"), None, NOW + MINUTE)
    reader = states.reader()
    stale = reader.footprints(["busy"])["busy"]
    # The consumer applies a batch and moves the conversation's due-index slot.
    writer.save(make_state("busy", events=5), etag, NOW + 60 * MINUTE)
    erased = reader.erase(stale)
    assert erased.state_etag != stale.state_etag and erased.index_rows != stale.index_rows
    assert reader.footprints(["busy"])["busy"].empty
    assert states.reader().stored("busy") is None
    # A consumer that still caches the erased state cannot write it back: its ETag is gone.
    cached = writer.load("busy")
    if cached is not None:
        with pytest.raises(ConcurrencyConflict):
            writer.save(cached[0], cached[1], NOW + MINUTE)
    assert states.reader().stored("busy") is None
