"""What an event hub holds, partition by partition, and single events at a position.

`HubReader` is the port (ops' lag and checkpoint resets, the telemetry probe, the simulator's
idle check read through it); `EventHubReader` speaks the Event Hubs SDK, `InMemoryHub` is its
twin. Reading never receives more than one event, and never as the app's consumer group's
owner: partition properties need no receiver, and a single-event read uses its own short-lived
client. `EventHubReader` holds no client between calls: each call closes the client (and the
credential) it made.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from azure.core.exceptions import AzureError
from azure.eventhub import EventData
from azure.eventhub.aio import PartitionContext
from azure.eventhub.exceptions import EventHubError

from adapters import clients
from adapters.errors import Unreachable
from adapters.settings import DEFAULT_EVENTHUB_NAME, EventHubConnection

READ_WAIT_SECONDS = 10.0


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


def partition_order(partition: str) -> tuple[int, str]:
    """Numeric ids in numeric order ("2" before "10")."""
    return len(partition), partition


class HubReader(Protocol):
    """Partition properties and single events of one hub, as one consumer group sees them."""

    @property
    def eventhub_name(self) -> str: ...

    def partitions(self) -> list[PartitionInfo]:
        """Every partition's properties, in partition order."""
        ...

    def first_at(self, partition: str, when: datetime) -> int | None:
        """Sequence number of the first event enqueued at or after `when`, if any."""
        ...

    def offset_of(self, partition: str, sequence: int) -> str | None:
        """The offset of event `sequence` (None: it could not be read)."""
        ...


class EventHubReader:
    """`HubReader` over the Event Hubs SDK's consumer clients."""

    def __init__(self, connection: EventHubConnection, eventhub_name: str, group: str) -> None:
        self._connection = connection
        self._eventhub_name = eventhub_name
        self._group = group

    @property
    def eventhub_name(self) -> str:
        """The hub read."""
        return self._eventhub_name

    def partitions(self) -> list[PartitionInfo]:
        """Every partition's properties, in partition order."""
        client, credential = clients.consumer(self._connection, self._eventhub_name, self._group)
        try:
            with client:
                ids = client.get_partition_ids()
                found = [PartitionInfo.from_sdk(client.get_partition_properties(p)) for p in ids]
        except (EventHubError, AzureError, OSError) as e:
            raise Unreachable(
                f"could not read the partitions of event hub {self._eventhub_name!r}: "
                f"{type(e).__name__}: {str(e)[:300]}; check EventHubConnection and "
                "EVENTHUB_NAME, and that you may receive from the hub (Azure Event Hubs Data "
                "Receiver)"
            ) from e
        finally:
            if credential is not None:  # the client never closes its credential
                credential.close()
        return sorted(found, key=lambda info: partition_order(info.partition))

    def first_at(self, partition: str, when: datetime) -> int | None:
        """Sequence number of the first event enqueued at or after `when`, if any."""
        event = asyncio.run(self._one(partition, when))
        return None if event is None else int(event.sequence_number or 0)

    def offset_of(self, partition: str, sequence: int) -> str | None:
        """The offset of event `sequence` (None: it could not be read in time)."""
        event = asyncio.run(self._one(partition, sequence))
        if event is None or event.sequence_number != sequence or event.offset is None:
            return None
        return str(event.offset)

    async def _one(self, partition: str, position: int | datetime) -> EventData | None:
        # A receive runs until its client closes: one short-lived client per read.
        client, credential = clients.async_consumer(
            self._connection, self._eventhub_name, self._group
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
            if credential is not None:  # bound to this call's loop, and never closed by the client
                await credential.close()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event of the in-memory hub."""

    sequence_number: int
    offset: str
    enqueued_time: datetime


@dataclass(slots=True)
class InMemoryHub:
    """The hub reader's twin: partitions as lists of events; the oldest may have expired."""

    eventhub_name: str = DEFAULT_EVENTHUB_NAME
    events: dict[str, list[StoredEvent]] = field(default_factory=dict)
    beginning: dict[str, int] = field(default_factory=dict)
    """Per partition, the first sequence number still retained (default 0)."""

    def append(self, partition: str, enqueued_time: datetime) -> StoredEvent:
        """Enqueue one event; sequence numbers and offsets count up per partition."""
        stored = self.events.setdefault(partition, [])
        sequence = self.beginning.get(partition, 0) + len(stored)
        event = StoredEvent(sequence, str(sequence * 1000), enqueued_time)
        stored.append(event)
        return event

    def partitions(self) -> list[PartitionInfo]:
        """Every partition's properties, in partition order."""
        found = []
        for partition in sorted(self.events, key=partition_order):
            stored = self.events[partition]
            beginning = self.beginning.get(partition, 0)
            last = stored[-1] if stored else None
            found.append(
                PartitionInfo(
                    partition=partition,
                    beginning_sequence_number=beginning,
                    last_enqueued_sequence_number=last.sequence_number if last else beginning - 1,
                    last_enqueued_offset=last.offset if last else "-1",
                    last_enqueued_time=last.enqueued_time if last else None,
                    is_empty=last is None,
                )
            )
        return found

    def first_at(self, partition: str, when: datetime) -> int | None:
        """Sequence number of the first event enqueued at or after `when`, if any."""
        return next(
            (e.sequence_number for e in self.events.get(partition, []) if e.enqueued_time >= when),
            None,
        )

    def offset_of(self, partition: str, sequence: int) -> str | None:
        """The offset of event `sequence` (None: not retained)."""
        return next(
            (e.offset for e in self.events.get(partition, []) if e.sequence_number == sequence),
            None,
        )
