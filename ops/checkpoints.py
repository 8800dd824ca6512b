"""The Functions host's Event Hubs checkpoints and ownership, read and written as it does.

Container `azure-webjobs-eventhub` of AzureWebJobsStorage; per partition an empty blob
`{namespace}/{hub}/{consumer group}/checkpoint/{partition}` (lower case) whose metadata holds
`offset` and `sequencenumber` of the last event processed, and
`…/ownership/{partition}` whose metadata `ownerid` names the instance holding the partition
(empty once released). This is the layout of the Event Hubs SDKs' `BlobCheckpointStore`, which
the extension uses; a consumer resumes *after* the checkpointed offset. Offset `-1` means
"before the first event" (the SDKs' start-of-stream position).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from ops.errors import Unreachable

CONTAINER = "azure-webjobs-eventhub"
START_OFFSET = "-1"
START_SEQUENCE = -1


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


class CheckpointStore:
    """Reads and writes the host's checkpoint blobs in one container."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    def checkpoints(self, address: HubAddress) -> dict[str, Checkpoint]:
        """Every partition's checkpoint, by partition id (partitions never checkpointed: absent)."""
        found: dict[str, Checkpoint] = {}
        prefix = address.prefix("checkpoint")
        for blob in self._list(prefix):
            partition = blob.name[len(prefix) :]
            metadata = blob.metadata or {}
            try:
                sequence = int(metadata["sequencenumber"])
                offset = str(metadata["offset"])
            except (KeyError, ValueError):
                continue  # not written by a checkpoint store: nothing the host would read either
            found[partition] = Checkpoint(partition, sequence, offset, blob.last_modified)
        return found

    def ownership(self, address: HubAddress) -> dict[str, Ownership]:
        """Every partition's ownership record, by partition id."""
        prefix = address.prefix("ownership")
        return {
            blob.name[len(prefix) :]: Ownership(
                blob.name[len(prefix) :],
                (blob.metadata or {}).get("ownerid", ""),
                blob.last_modified,
            )
            for blob in self._list(prefix)
        }

    def write(self, address: HubAddress, checkpoint: Checkpoint) -> None:
        """Write one partition's checkpoint (an empty blob with the metadata, like the SDKs)."""
        metadata = {
            "offset": checkpoint.offset,
            "sequencenumber": str(checkpoint.sequence_number),
        }
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
        try:
            if not self._container.exists():
                return []
            return [
                _Listed(blob.name, dict(blob.metadata or {}), blob.last_modified)
                for blob in self._container.list_blobs(
                    name_starts_with=prefix, include=["metadata"]
                )
            ]
        except AzureError as e:
            raise Unreachable(
                f"could not list {prefix!r} in container {CONTAINER!r}: {type(e).__name__}: "
                f"{str(e)[:300]}; check AzureWebJobsStorage and that you may read blobs there"
            ) from e


@dataclass(frozen=True, slots=True)
class _Listed:
    name: str
    metadata: dict[str, str]
    last_modified: datetime | None
