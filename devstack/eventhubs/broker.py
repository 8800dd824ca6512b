"""The emulator's state, shared by every connection: hubs, partition logs and receivers.

Nothing here knows about AMQP links or sockets. Connections call `publish` with parsed
transfers, ask for properties, and register receivers, which the broker notifies when their
partition grows and disconnects when a higher owner level takes the partition over.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapters.partition_hash import partition_index
from devstack.eventhubs import messages
from devstack.eventhubs.config import EmulatorConfig, HubConfig
from devstack.eventhubs.errors import StorageError
from devstack.eventhubs.storage import DataDirLock, LogSettings, PartitionInfo, PartitionLog

_LOG = logging.getLogger(__name__)

MAX_RECEIVERS_PER_PARTITION = 5  # non-epoch receivers per partition and consumer group


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Receiver(Protocol):
    """What the broker needs from a consumer link."""

    owner_level: int | None

    def on_events_available(self) -> None:
        """New events were appended to the receiver's partition."""

    def disconnect(self, condition: str, description: str) -> None:
        """Detach the link with an error (taken over by a higher owner level)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a receiver may not attach: an AMQP error condition and a description."""

    condition: str
    description: str


@dataclass
class _PartitionReceivers:
    members: list[Receiver] = field(default_factory=list)


class Broker:
    """Hubs, their partition logs, and the receivers attached to them."""

    def __init__(
        self,
        config: EmulatorConfig,
        data_dir: Path,
        *,
        retention_ms: int,
        fsync_each_append: bool = False,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.config = config
        self.retention_ms = retention_ms
        self._clock = clock
        settings = LogSettings(
            segment_max_age_ms=max(1, min(3_600_000, retention_ms // 4)),
            fsync_each_append=fsync_each_append,
        )
        self._lock = DataDirLock(data_dir)
        self._lock.acquire()
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._created_at_ms: dict[str, int] = {}
        try:
            for hub in config.hubs:
                hub_dir = data_dir / config.namespace.lower() / hub.name.lower()
                for index in range(hub.partition_count):
                    self._logs[(hub.name, index)] = PartitionLog(hub_dir / str(index), settings)
                self._created_at_ms[hub.name] = self._creation_time(hub_dir)
        except BaseException:
            self.close()
            raise
        self._round_robin = {
            hub.name: itertools.cycle(range(hub.partition_count)) for hub in config.hubs
        }
        self._receivers: dict[tuple[str, str, int], _PartitionReceivers] = {}
        self._subscribers: dict[tuple[str, int], set[Receiver]] = {}

    def _creation_time(self, hub_dir: Path) -> int:
        """When the hub was first created in this data dir (kept across restarts)."""
        marker = hub_dir / "created_at"
        try:
            return int(marker.read_text(encoding="ascii"))
        except (OSError, ValueError):
            now = self._clock()
            try:
                marker.write_text(str(now), encoding="ascii")
            except OSError as e:
                raise StorageError(f"cannot write {marker}: {e}") from e
            return now

    # ------------------------------------------------------------------ lookups

    def created_at_ms(self, hub: HubConfig) -> int:
        return self._created_at_ms[hub.name]

    def hub(self, name: str) -> HubConfig | None:
        return self.config.hub(name)

    def log(self, hub: HubConfig, partition: int) -> PartitionLog:
        return self._logs[(hub.name, partition)]

    def logs(self) -> Iterator[tuple[HubConfig, int, PartitionLog]]:
        for hub in self.config.hubs:
            for index in range(hub.partition_count):
                yield hub, index, self._logs[(hub.name, index)]

    def partition_info(self, hub: HubConfig, partition: int) -> PartitionInfo:
        return self.log(hub, partition).info()

    def now_ms(self) -> int:
        return self._clock()

    # ------------------------------------------------------------------ publishing

    def publish(
        self, hub: HubConfig, partition: int | None, transfer: messages.Transfer
    ) -> tuple[int, int]:
        """Append a transfer's events to one partition; return (partition, first sequence)."""
        if partition is None:
            if transfer.partition_key is not None:
                partition = partition_index(transfer.partition_key, hub.partition_count)
            else:
                partition = next(self._round_robin[hub.name])
        events = [messages.with_partition_key(e, transfer.partition_key) for e in transfer.events]
        first = self.log(hub, partition).append(events, self._clock())
        for receiver in list(self._subscribers.get((hub.name, partition), ())):
            receiver.on_events_available()
        return partition, first

    # ------------------------------------------------------------------ receivers

    def attach_receiver(
        self, hub: HubConfig, consumer_group: str, partition: int, receiver: Receiver
    ) -> Refusal | None:
        """Admit a receiver under the owner-level rules, or say why not.

        A receiver with an owner level (epoch) takes the partition from every receiver with a
        lower or equal one and from all receivers without one; a lower epoch is refused, as is
        a receiver without epoch while an epoch receiver holds the partition. At most five
        receivers without epoch may share a partition and consumer group.
        """
        group = self._receivers.setdefault(
            (hub.name, consumer_group.lower(), partition), _PartitionReceivers()
        )
        holders = [r for r in group.members if r.owner_level is not None]
        entity = f"{hub.name}/ConsumerGroups/{consumer_group}/Partitions/{partition}"
        if receiver.owner_level is not None:
            higher = [r for r in holders if (r.owner_level or 0) > receiver.owner_level]
            if higher:
                return Refusal(
                    "amqp:link:stolen",
                    f"Receiver with epoch '{receiver.owner_level}' cannot be created: a receiver"
                    f" with the higher epoch '{higher[0].owner_level}' holds {entity}.",
                )
            for old in list(group.members):
                self._forget(group, hub, partition, old)
                old.disconnect(
                    "amqp:link:stolen",
                    f"New receiver with higher epoch of '{receiver.owner_level}' is created hence"
                    f" current receiver with epoch '{old.owner_level}' is getting disconnected."
                    f" Entity: {entity}.",
                )
        elif holders:
            return Refusal(
                "amqp:link:stolen",
                f"Receiver without epoch cannot be created: a receiver with epoch"
                f" '{holders[0].owner_level}' holds {entity}.",
            )
        elif len(group.members) >= MAX_RECEIVERS_PER_PARTITION:
            return Refusal(
                "amqp:resource-limit-exceeded",
                "Exceeded the maximum number of allowed receivers per partition in a consumer"
                f" group which is {MAX_RECEIVERS_PER_PARTITION}. Entity: {entity}.",
            )
        group.members.append(receiver)
        self._subscribers.setdefault((hub.name, partition), set()).add(receiver)
        return None

    def detach_receiver(
        self, hub: HubConfig, consumer_group: str, partition: int, receiver: Receiver
    ) -> None:
        group = self._receivers.get((hub.name, consumer_group.lower(), partition))
        if group is not None and receiver in group.members:
            self._forget(group, hub, partition, receiver)

    def receiver_count(self, hub: HubConfig, partition: int) -> int:
        """Receivers attached to a partition, over all consumer groups."""
        return len(self._subscribers.get((hub.name, partition), ()))

    def _forget(
        self, group: _PartitionReceivers, hub: HubConfig, partition: int, receiver: Receiver
    ) -> None:
        group.members.remove(receiver)
        self._subscribers.get((hub.name, partition), set()).discard(receiver)

    # ------------------------------------------------------------------ housekeeping

    def flush(self) -> None:
        """fsync every partition written since the last flush."""
        for _, _, log in self.logs():
            log.flush()

    def apply_retention(self) -> int:
        """Trim events older than the retention period; return how many were dropped."""
        cutoff = self._clock() - self.retention_ms
        return sum(log.trim(cutoff) for _, _, log in self.logs())

    def close(self) -> None:
        """fsync and close every log, then release the data dir."""
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        self._lock.release()
