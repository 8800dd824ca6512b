"""The Functions host's Event Hubs checkpoints and ownership, read and written as it does.

Container `azure-webjobs-eventhub` of AzureWebJobsStorage; per partition an empty blob
`{namespace}/{hub}/{consumer group}/checkpoint/{partition}` (lower case) whose metadata holds
`offset` and `sequencenumber` of the last event processed, and
`…/ownership/{partition}` whose metadata `ownerid` names the instance holding the partition
(empty once released). This is the layout of the Event Hubs SDKs' `BlobCheckpointStore`, which
the extension uses; a consumer resumes *after* the checkpointed offset. Offset `-1` means
"before the first event" (the SDKs' start-of-stream position).

`CheckpointStore` is the port (ops, the telemetry probe and the simulator read through it);
`BlobCheckpointStore` speaks Blob Storage (closing, with itself, the clients it was built with:
`adapters.wiring.checkpoint_store`), `InMemoryCheckpointStore` is its twin.
"""

from __future__ import annotations

import contextlib
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from adapters.containers import BlobContainerReader
from adapters.errors import Unreachable
from adapters.owned import ClosesOwned

CONTAINER = "azure-webjobs-eventhub"
START_OFFSET = "-1"
START_SEQUENCE = -1
OWNERSHIP_EXPIRY = timedelta(seconds=60)
"""An owner that has not renewed its claim for this long is gone (the SDK's default is 60 s)."""
READ_HINT = "check AzureWebJobsStorage and that you may read blobs there"


@dataclass(frozen=True, slots=True)
class HubAddress:
    """Which consumer's checkpoints: namespace (host), hub and consumer group."""

    namespace: str
    hub: str
    consumer_group: str

    def prefix(self, kind: str) -> str:
        """`{namespace}/{hub}/{group}/{kind}/`, lower case like the SDKs."""
        return f"{self.namespace}/{self.hub}/{self.consumer_group}/{kind}/".lower()

    def checkpoint_blob(self, partition: str) -> str:
        """The checkpoint blob of one partition."""
        return f"{self.prefix('checkpoint')}{partition}".lower()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last event processed in a partition (`sequence_number` -1: none yet)."""

    partition: str
    sequence_number: int
    offset: str
    updated: datetime | None = None

    @property
    def at_start(self) -> bool:
        """A checkpoint that makes the consumer start at the first retained event."""
        return self.offset == START_OFFSET


@dataclass(frozen=True, slots=True)
class Ownership:
    """Who holds a partition, as of the blob's last write."""

    partition: str
    owner_id: str
    updated: datetime | None


def start_checkpoint(partition: str) -> Checkpoint:
    """Resume at the first event still retained."""
    return Checkpoint(partition, START_SEQUENCE, START_OFFSET)


def live_owners(
    owners: dict[str, Ownership], now: datetime, expiry: timedelta = OWNERSHIP_EXPIRY
) -> list[Ownership]:
    """Ownership claims still held (an owner id, renewed within `expiry`), by partition."""
    held = [
        o for o in owners.values() if o.owner_id and (o.updated is None or now - o.updated < expiry)
    ]
    return sorted(held, key=lambda o: (len(o.partition), o.partition))


class CheckpointStore(Protocol):
    """The host's checkpoints and ownership claims of one storage account."""

    def checkpoints(self, address: HubAddress) -> dict[str, Checkpoint]:
        """Every partition's checkpoint, by partition id (never checkpointed: absent)."""
        ...

    def ownership(self, address: HubAddress) -> dict[str, Ownership]:
        """Every partition's ownership record, by partition id."""
        ...

    def write(self, address: HubAddress, checkpoint: Checkpoint) -> None:
        """Write one partition's checkpoint."""
        ...


@dataclass(frozen=True, slots=True)
class _Listed:
    name: str
    metadata: dict[str, str]
    last_modified: datetime | None


def _checkpoints(listed: list[_Listed], prefix: str) -> dict[str, Checkpoint]:
    found: dict[str, Checkpoint] = {}
    for blob in listed:
        partition = blob.name[len(prefix) :]
        try:
            sequence = int(blob.metadata["sequencenumber"])
            offset = str(blob.metadata["offset"])
        except (KeyError, ValueError):
            continue  # not written by a checkpoint store: nothing the host would read either
        found[partition] = Checkpoint(partition, sequence, offset, blob.last_modified)
    return found


def _ownership(listed: list[_Listed], prefix: str) -> dict[str, Ownership]:
    return {
        blob.name[len(prefix) :]: Ownership(
            blob.name[len(prefix) :], blob.metadata.get("ownerid") or "", blob.last_modified
        )
        for blob in listed
    }


class _ListingReader:
    """Checkpoints and ownership read off a listing of blobs with their metadata."""

    __slots__ = ()

    def _list(self, prefix: str) -> list[_Listed]:
        raise NotImplementedError

    def checkpoints(self, address: HubAddress) -> dict[str, Checkpoint]:
        """Every partition's checkpoint, by partition id (never checkpointed: absent)."""
        prefix = address.prefix("checkpoint")
        return _checkpoints(self._list(prefix), prefix)

    def ownership(self, address: HubAddress) -> dict[str, Ownership]:
        """Every partition's ownership record, by partition id."""
        prefix = address.prefix("ownership")
        return _ownership(self._list(prefix), prefix)


def _metadata(checkpoint: Checkpoint) -> dict[str, str]:
    return {"offset": checkpoint.offset, "sequencenumber": str(checkpoint.sequence_number)}


class BlobCheckpointStore(_ListingReader, ClosesOwned):
    """`CheckpointStore` over the host's checkpoint container."""

    def __init__(self, container: ContainerClient, *, owned: ExitStack | None = None) -> None:
        """`owned`: the service client under `container` (and its credential) this store
        closes (None: the caller's)."""
        self._container = container
        self._owned = owned or ExitStack()
        # Listing is the containers' reader's: a missing container lists nothing.
        self._blobs = BlobContainerReader(container, hint=READ_HINT)

    def write(self, address: HubAddress, checkpoint: Checkpoint) -> None:
        """Write one partition's checkpoint (an empty blob with the metadata, like the SDKs)."""
        metadata = _metadata(checkpoint)
        blob = self._container.get_blob_client(address.checkpoint_blob(checkpoint.partition))
        try:
            try:
                blob.upload_blob(b"", overwrite=True, metadata=metadata)
            except ResourceNotFoundError:  # a store nobody has checkpointed in yet
                with contextlib.suppress(ResourceExistsError):
                    self._container.create_container()
                blob.upload_blob(b"", overwrite=True, metadata=metadata)
        except AzureError as e:
            raise Unreachable(
                f"could not write the checkpoint of partition {checkpoint.partition} in "
                f"container {CONTAINER!r}: {type(e).__name__}: {str(e)[:300]}; check "
                "AzureWebJobsStorage and that you may write blobs there"
            ) from e

    def _list(self, prefix: str) -> list[_Listed]:
        return [
            _Listed(blob.name, dict(blob.metadata), blob.last_modified)
            for blob in self._blobs.list(prefix)
        ]


@dataclass(slots=True)
class InMemoryCheckpointStore(_ListingReader):
    """The checkpoint store's twin: blobs by name with metadata and a write time."""

    blobs: dict[str, _Listed] = field(default_factory=dict)
    now: datetime | None = None
    """The time writes are stamped with (None: unknown, like a store that does not say)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, address: HubAddress, checkpoint: Checkpoint) -> None:
        """Write one partition's checkpoint."""
        name = address.checkpoint_blob(checkpoint.partition)
        with self._lock:
            self.blobs[name] = _Listed(name, _metadata(checkpoint), self.now)

    def claim(self, address: HubAddress, partition: str, owner_id: str) -> None:
        """Write an ownership record, as a consumer claiming a partition does."""
        name = f"{address.prefix('ownership')}{partition}".lower()
        with self._lock:
            self.blobs[name] = _Listed(name, {"ownerid": owner_id}, self.now)

    def _list(self, prefix: str) -> list[_Listed]:
        with self._lock:
            return [blob for name, blob in sorted(self.blobs.items()) if name.startswith(prefix)]
