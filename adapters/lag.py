"""Consumer lag per partition: the hub's last enqueued event vs the host's checkpoint.

Lag is the number of events enqueued after the checkpointed one. `compute` is pure; `measure`
reads through the ports (`HubReader`, `CheckpointStore`). A checkpoint the hub cannot explain
is flagged: one ahead of the hub's last event means the hub was recreated (sequence numbers
restarted: the consumer would skip everything until it catches up), one before the first
retained event means events expired unread.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from adapters.checkpoints import Checkpoint, CheckpointStore, HubAddress
from adapters.partitions import HubReader, PartitionInfo


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


def measure(
    hub: HubReader, checkpoints: CheckpointStore, address: HubAddress
) -> list[PartitionLag]:
    """Lag of every partition of `address`'s hub and consumer group."""
    marks = checkpoints.checkpoints(address)
    return [compute(info, marks.get(info.partition)) for info in hub.partitions()]


def total(rows: list[PartitionLag]) -> int:
    """Events owed over every partition."""
    return sum(row.lag for row in rows)
