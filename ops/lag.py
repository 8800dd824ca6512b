"""Consumer lag per partition: the hub's last enqueued event vs the host's checkpoint.

Lag is the number of events enqueued after the checkpointed one. `compute` is pure; `measure`
reads the hub (`get_partition_properties`) and the checkpoint blobs. A checkpoint the hub
cannot explain is flagged: one ahead of the hub's last event means the hub was recreated
(sequence numbers restarted: the consumer would skip everything until it catches up), one
before the first retained event means events expired unread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from azure.core.exceptions import AzureError
from azure.eventhub.exceptions import EventHubError

from ops import clients
from ops.checkpoints import CONTAINER, Checkpoint, CheckpointStore, HubAddress
from ops.errors import Unreachable
from ops.settings import HubSettings


class LagState(StrEnum):
    """How a partition's checkpoint relates to what the hub holds."""

    OK = "ok"
    EMPTY = "empty"
    """Nothing retained and nothing owed."""
    NO_CHECKPOINT = "no-checkpoint"
    """Never checkpointed: the host starts at `initialOffsetOptions` (from start here)."""
    AHEAD = "ahead"
    """Checkpoint past the hub's last event: the hub was recreated; reset the checkpoint."""
    EXPIRED = "expired"
    """Checkpoint before the first retained event: events expired unread."""


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """What the hub says about one partition."""

    partition: str
    beginning_sequence_number: int
    last_enqueued_sequence_number: int
    last_enqueued_offset: str
    last_enqueued_time: datetime | None
    is_empty: bool

    @classmethod
    def from_sdk(cls, properties: dict[str, Any]) -> PartitionInfo:
        """From `get_partition_properties`."""
        return cls(
            partition=str(properties["id"]),
            beginning_sequence_number=int(properties["beginning_sequence_number"]),
            last_enqueued_sequence_number=int(properties["last_enqueued_sequence_number"]),
            last_enqueued_offset=str(properties["last_enqueued_offset"]),
            last_enqueued_time=properties.get("last_enqueued_time_utc"),
            is_empty=bool(properties["is_empty"]),
        )

    @property
    def retained(self) -> int:
        """Events the partition holds."""
        if self.is_empty:
            return 0
        return self.last_enqueued_sequence_number - self.beginning_sequence_number + 1


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition's lag and how it was judged."""

    info: PartitionInfo
    checkpoint: Checkpoint | None
    lag: int
    state: LagState

    @property
    def partition(self) -> str:
        """The partition id."""
        return self.info.partition


def compute(info: PartitionInfo, checkpoint: Checkpoint | None) -> PartitionLag:
    """Events the consumer still owes in one partition."""
    last = info.last_enqueued_sequence_number
    if checkpoint is None:
        state = LagState.EMPTY if info.is_empty else LagState.NO_CHECKPOINT
        return PartitionLag(info, checkpoint, info.retained, state)
    if checkpoint.at_start:  # reset to start on purpose: everything retained is owed
        state = LagState.EMPTY if info.is_empty else LagState.OK
        return PartitionLag(info, checkpoint, info.retained, state)
    done = checkpoint.sequence_number
    if done > last:
        return PartitionLag(info, checkpoint, info.retained, LagState.AHEAD)
    if info.is_empty:
        return PartitionLag(info, checkpoint, 0, LagState.EMPTY)
    if done < info.beginning_sequence_number - 1:
        return PartitionLag(info, checkpoint, info.retained, LagState.EXPIRED)
    return PartitionLag(info, checkpoint, last - done, LagState.OK)


def address(settings: HubSettings) -> HubAddress:
    """The checkpoint address of the app's trigger."""
    return HubAddress(settings.namespace, settings.eventhub_name, settings.consumer_group)


def partitions(settings: HubSettings) -> list[PartitionInfo]:
    """Every partition's properties, in partition order."""
    client = clients.consumer(settings.eventhub, settings.eventhub_name, settings.consumer_group)
    try:
        with client:
            ids = client.get_partition_ids()
            found = [PartitionInfo.from_sdk(client.get_partition_properties(p)) for p in ids]
    except (EventHubError, AzureError) as e:
        raise Unreachable(
            f"could not read the partitions of event hub {settings.eventhub_name!r}: "
            f"{type(e).__name__}: {str(e)[:300]}; check EventHubConnection and EVENTHUB_NAME, "
            "and that you may receive from the hub (Azure Event Hubs Data Receiver)"
        ) from e
    return sorted(found, key=lambda info: (len(info.partition), info.partition))


def measure(settings: HubSettings) -> list[PartitionLag]:
    """Lag of every partition of the app's hub and consumer group."""
    store = CheckpointStore(clients.blobs(settings.host_storage).get_container_client(CONTAINER))
    checkpoints = store.checkpoints(address(settings))
    return [compute(info, checkpoints.get(info.partition)) for info in partitions(settings)]
