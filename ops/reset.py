"""Moving the consumer's checkpoints: to the start, the latest event, a time or a sequence number.

A checkpoint names the last event processed, so "resume at sequence N" writes the position of
event N-1 (its offset is read from the hub: offsets are opaque), and "resume at the first
retained event" writes the start-of-stream offset. The consumer must not hold the partitions
while this runs: an owner keeps its position in memory and overwrites the checkpoint with its
next batch. So a reset refuses while any partition is owned, unless forced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import PartitionContext

from ops import clients
from ops.checkpoints import (
    CONTAINER,
    Checkpoint,
    CheckpointStore,
    Ownership,
    start_checkpoint,
)
from ops.errors import ConfigError, NotFound, Refused, Unreachable
from ops.lag import PartitionInfo, address, partitions
from ops.settings import HubSettings

OWNERSHIP_EXPIRY = timedelta(seconds=60)
"""An owner that has not renewed its claim for this long is gone (the SDK's default is 60 s)."""
READ_WAIT_SECONDS = 10.0


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
            raise ConfigError("a reset to a time needs an aware time, e.g. 2024-05-01T12:00:00Z")
        if self.target is Target.SEQUENCE and (self.sequence is None or self.sequence < 0):
            raise ConfigError(
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


def live_owners(owners: dict[str, Ownership], now: datetime) -> list[Ownership]:
    """Ownership claims still held (an owner id, renewed within the expiry)."""
    return [
        o
        for o in owners.values()
        if o.owner_id and (o.updated is None or now - o.updated < OWNERSHIP_EXPIRY)
    ]


def reset(
    settings: HubSettings,
    where: Where,
    only: Sequence[str] = (),
    *,
    force: bool = False,
    dry_run: bool = False,
) -> list[Moved]:
    """Move the checkpoints of `only` (default: every partition) to `where`."""
    store = CheckpointStore(clients.blobs(settings.host_storage).get_container_client(CONTAINER))
    hub = address(settings)
    infos = {info.partition: info for info in partitions(settings)}
    chosen = list(only) or list(infos)
    unknown = [p for p in chosen if p not in infos]
    if unknown:
        raise NotFound(
            f"partition(s) {', '.join(unknown)} not in event hub {settings.eventhub_name!r}; "
            f"it has {', '.join(infos)}"
        )
    owned = [
        o for o in live_owners(store.ownership(hub), datetime.now(UTC)) if o.partition in chosen
    ]
    if owned and not force and not dry_run:
        held = ", ".join(f"{o.partition} (owner {o.owner_id[:12]})" for o in owned)
        raise Refused(
            f"partition(s) {held} are held by a running consumer, which would overwrite the "
            "checkpoint with its next batch: stop the function app (or disable the transform "
            "function) and wait a minute, or pass --force"
        )
    before = store.checkpoints(hub)
    targets = asyncio.run(_positions(settings, [infos[p] for p in chosen], where))
    moved: list[Moved] = []
    for partition in chosen:
        checkpoint, resumes_at = targets[partition]
        if not dry_run:
            store.write(hub, checkpoint)
        moved.append(Moved(partition, before.get(partition), checkpoint, resumes_at))
    return moved


async def _positions(
    settings: HubSettings, infos: list[PartitionInfo], where: Where
) -> dict[str, tuple[Checkpoint, int]]:
    reader = _Reader(settings)
    return {info.partition: await _position(reader, info, where) for info in infos}


async def _position(reader: _Reader, info: PartitionInfo, where: Where) -> tuple[Checkpoint, int]:
    """The checkpoint that makes the consumer resume at `where`, and the sequence it resumes at."""
    partition = info.partition
    latest = (
        (start_checkpoint(partition), info.beginning_sequence_number)
        if info.is_empty
        else (
            Checkpoint(partition, info.last_enqueued_sequence_number, info.last_enqueued_offset),
            info.last_enqueued_sequence_number + 1,
        )
    )
    if where.target is Target.START or info.is_empty:
        return start_checkpoint(partition), info.beginning_sequence_number
    if where.target is Target.LATEST:
        return latest
    if where.target is Target.TIME:
        assert where.time is not None
        first = await reader.first_at(partition, where.time)
        if first is None:
            return latest
        resume = first
    else:
        assert where.sequence is not None
        resume = where.sequence
    if resume <= info.beginning_sequence_number:
        return start_checkpoint(partition), info.beginning_sequence_number
    if resume > info.last_enqueued_sequence_number + 1:
        raise ConfigError(
            f"partition {partition} ends at sequence number {info.last_enqueued_sequence_number}"
            f"; resume at {info.last_enqueued_sequence_number + 1} at most (or use --to latest)"
        )
    if resume == info.last_enqueued_sequence_number + 1:
        return latest
    previous = await reader.at_sequence(partition, resume - 1)
    return Checkpoint(partition, resume - 1, previous), resume


class _Reader:
    """Reads one event at a position, to learn its sequence number or offset."""

    def __init__(self, settings: HubSettings) -> None:
        self._settings = settings

    async def first_at(self, partition: str, when: datetime) -> int | None:
        """Sequence number of the first event enqueued at or after `when`, if any."""
        event = await self._one(partition, when)
        return None if event is None else int(event.sequence_number or 0)

    async def at_sequence(self, partition: str, sequence: int) -> str:
        """The offset of event `sequence`."""
        event = await self._one(partition, sequence)
        if event is None or event.sequence_number != sequence or event.offset is None:
            raise Unreachable(
                f"could not read event {sequence} of partition {partition} within "
                f"{READ_WAIT_SECONDS:.0f} s; retry, or reset to start/latest instead"
            )
        return str(event.offset)

    async def _one(self, partition: str, position: int | datetime) -> EventData | None:
        # A receive runs until its client closes: one short-lived client per read.
        settings = self._settings
        client = clients.async_consumer(
            settings.eventhub, settings.eventhub_name, settings.consumer_group
        )
        found: asyncio.Future[EventData | None] = asyncio.get_running_loop().create_future()

        async def on_event(_: PartitionContext, event: EventData | None) -> None:
            if not found.done():
                found.set_result(event)

        task = asyncio.create_task(
            client.receive(
                on_event,
                partition_id=partition,
                starting_position=position,
                starting_position_inclusive=True,
                max_wait_time=READ_WAIT_SECONDS,
                prefetch=1,
            )
        )
        try:
            waiting: list[asyncio.Future[Any]] = [found, task]
            done, _ = await asyncio.wait(
                waiting, timeout=READ_WAIT_SECONDS + 5, return_when=asyncio.FIRST_COMPLETED
            )
            if found.done():
                return found.result()
            if task in done and task.exception() is not None:
                error = task.exception()
                raise Unreachable(
                    f"could not read partition {partition}: {type(error).__name__}: {error}"
                )
            return None
        finally:
            await client.close()
            # A closed client's receive lingers for its link timeout; nothing is left to get.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
