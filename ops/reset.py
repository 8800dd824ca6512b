"""Moving the consumer's checkpoints: to the start, the latest event, a time or a sequence number.

A checkpoint names the last event processed, so "resume at sequence N" writes the position of
event N-1 (its offset is read from the hub: offsets are opaque), and "resume at the first
retained event" writes the start-of-stream offset. The consumer must not hold the partitions
while this runs: an owner keeps its position in memory and overwrites the checkpoint with its
next batch. So a reset refuses while any partition is owned, unless forced. The hub and the
checkpoints are read and written through the adapters' ports (`HubReader`, `CheckpointStore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from adapters.checkpoints import (
    Checkpoint,
    CheckpointStore,
    HubAddress,
    live_owners,
    start_checkpoint,
)
from adapters.errors import Unreachable
from adapters.partitions import HubReader, PartitionInfo
from ops.errors import NotFound, Refused, UsageError


class Target(StrEnum):
    """Where the consumer should resume."""

    START = "start"
    LATEST = "latest"
    TIME = "time"
    SEQUENCE = "sequence"


@dataclass(frozen=True, slots=True)
class Where:
    """A target with its value (a time for TIME, the next sequence number for SEQUENCE)."""

    target: Target
    time: datetime | None = None
    sequence: int | None = None

    def __post_init__(self) -> None:
        if self.target is Target.TIME and (self.time is None or self.time.tzinfo is None):
            raise UsageError("a reset to a time needs an aware time, e.g. 2024-05-01T12:00:00Z")
        if self.target is Target.SEQUENCE and (self.sequence is None or self.sequence < 0):
            raise UsageError(
                f"a reset to a sequence number needs a number >= 0, got {self.sequence!r}"
            )


@dataclass(frozen=True, slots=True)
class Moved:
    """One partition's checkpoint before and after."""

    partition: str
    before: Checkpoint | None
    after: Checkpoint
    resumes_at: int
    """The sequence number the consumer processes next."""


def reset(
    hub: HubReader,
    store: CheckpointStore,
    address: HubAddress,
    where: Where,
    only: Sequence[str] = (),
    *,
    now: datetime,
    force: bool = False,
    dry_run: bool = False,
) -> list[Moved]:
    """Move the checkpoints of `only` (default: every partition) to `where`."""
    infos = {info.partition: info for info in hub.partitions()}
    chosen = list(only) or list(infos)
    unknown = [p for p in chosen if p not in infos]
    if unknown:
        raise NotFound(
            f"partition(s) {', '.join(unknown)} not in event hub {hub.eventhub_name!r}; "
            f"it has {', '.join(infos)}"
        )
    owned = [o for o in live_owners(store.ownership(address), now) if o.partition in chosen]
    if owned and not force and not dry_run:
        held = ", ".join(f"{o.partition} (owner {o.owner_id[:12]})" for o in owned)
        raise Refused(
            f"partition(s) {held} are held by a running consumer, which would overwrite the "
            "checkpoint with its next batch: stop the function app (or disable the transform "
            "function) and wait a minute, or pass --force"
        )
    before = store.checkpoints(address)
    moved: list[Moved] = []
    for partition in chosen:
        checkpoint, resumes_at = position(hub, infos[partition], where)
        if not dry_run:
            store.write(address, checkpoint)
        moved.append(Moved(partition, before.get(partition), checkpoint, resumes_at))
    return moved


def position(hub: HubReader, info: PartitionInfo, where: Where) -> tuple[Checkpoint, int]:
    """The checkpoint that makes the consumer resume at `where`, and the sequence it resumes at."""
    partition = info.partition
    if where.target is Target.START or info.is_empty:
        return start_checkpoint(partition), info.beginning_sequence_number
    latest = (
        Checkpoint(partition, info.last_enqueued_sequence_number, info.last_enqueued_offset),
        info.last_enqueued_sequence_number + 1,
    )
    if where.target is Target.LATEST:
        return latest
    if where.target is Target.TIME:
        assert where.time is not None
        first = hub.first_at(partition, where.time)
        if first is None:
            return latest
        resume = first
    else:
        assert where.sequence is not None
        resume = where.sequence
    if resume <= info.beginning_sequence_number:
        return start_checkpoint(partition), info.beginning_sequence_number
    if resume > info.last_enqueued_sequence_number + 1:
        raise UsageError(
            f"partition {partition} ends at sequence number {info.last_enqueued_sequence_number}"
            f"; resume at {info.last_enqueued_sequence_number + 1} at most (or use --to latest)"
        )
    if resume == info.last_enqueued_sequence_number + 1:
        return latest
    previous = hub.offset_of(partition, resume - 1)
    if previous is None:
        raise Unreachable(
            f"could not read event {resume - 1} of partition {partition}; retry, or reset to "
            "start/latest instead"
        )
    return Checkpoint(partition, resume - 1, previous), resume
