"""Is the pipeline idle? The hub drained, and nothing waiting to be finalized.

- Drained: on every partition the consumer group's checkpoint (the blob the Functions host
  writes in `azure-webjobs-eventhub`) has reached the last enqueued sequence number.
- Settled: no conversation state in the state table still owes a record. A state row's
  `Deadline` is when the timer next has work for it: a conversation written and up to date
  waits for purging, days away; one in its grace or idle period, or owing a write, is due
  within grace + idle. The row layout is the Table adapter's (`adapters.entity`).

`run` polls this after the send; `seed_checkpoints` starts a consumer group at the end of
the hub, so a run on a shared hub sees only its own events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient
from azure.eventhub import EventHubConsumerClient
from azure.eventhub.exceptions import EventHubError
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob import BlobServiceClient

CHECKPOINT_CONTAINER = "azure-webjobs-eventhub"
META_PREFIX = "!"
"""Rows whose PartitionKey or RowKey starts with this are the adapter's index and layout rows."""
SETTLED_MARGIN_MS = 60_000


@dataclass(frozen=True, slots=True)
class IdleState:
    """One look at the pipeline."""

    backlog: dict[str, int]
    """Partition → events enqueued but not yet checkpointed."""
    pending: int
    """Conversations not yet finalized, or owing a record write."""
    conversations: int
    error: str | None = None

    @property
    def idle(self) -> bool:
        return self.error is None and self.pending == 0 and not any(self.backlog.values())

    def describe(self) -> str:
        if self.error is not None:
            return f"cannot look: {self.error}"
        behind = sum(self.backlog.values())
        return f"{behind} events behind, {self.pending}/{self.conversations} conversations pending"


class PipelineProbe:
    """Reads checkpoints, partition properties and the state table; never writes."""

    def __init__(
        self,
        *,
        storage_connection_string: str,
        eventhub_connection_string: str,
        eventhub_name: str,
        consumer_group: str,
        state_table: str,
        horizon_ms: int,
    ) -> None:
        self.eventhub_name = eventhub_name
        self.consumer_group = consumer_group
        self.horizon_ms = horizon_ms + SETTLED_MARGIN_MS
        self._eventhub_connection_string = eventhub_connection_string
        self._blobs = BlobServiceClient.from_connection_string(storage_connection_string)
        self._table = TableClient.from_connection_string(storage_connection_string, state_table)
        self._hub: EventHubConsumerClient | None = None

    def _client(self) -> EventHubConsumerClient:
        if self._hub is None:
            self._hub = EventHubConsumerClient.from_connection_string(
                self._eventhub_connection_string,
                consumer_group="$Default",
                eventhub_name=self.eventhub_name,
                retry_total=1,
            )
        return self._hub

    def namespace(self) -> str:
        """The namespace as the SDK's processor names it in checkpoint blobs (`localhost:5673`)."""
        # The processor takes it from the client's parsed address; there is no public property.
        address = getattr(self._client(), "_address", None)
        return str(getattr(address, "hostname", "localhost"))

    def last_enqueued(self) -> dict[str, tuple[int, str]]:
        """Partition → (last enqueued sequence number, its offset); (-1, "-1") when empty."""
        client = self._client()
        found = {}
        for partition in client.get_partition_ids():
            props = client.get_partition_properties(partition)
            if props["is_empty"]:
                found[partition] = (-1, "-1")
            else:
                found[partition] = (
                    int(props["last_enqueued_sequence_number"]),
                    str(props["last_enqueued_offset"]),
                )
        return found

    def checkpoints(self) -> dict[str, int]:
        """Partition → checkpointed sequence number, for this hub and consumer group."""
        container = self._blobs.get_container_client(CHECKPOINT_CONTAINER)
        tail = f"/{self.eventhub_name}/{self.consumer_group}/checkpoint/".lower()
        found = {}
        try:
            for blob in container.list_blobs(include=["metadata"]):
                name = str(blob.name)
                if tail in name and blob.metadata and "sequencenumber" in blob.metadata:
                    found[name.rsplit("/", 1)[1]] = int(blob.metadata["sequencenumber"])
        except ResourceNotFoundError:
            return {}
        return found

    def owned(self, within_s: float) -> list[str]:
        """Partitions some consumer of this group has claimed or renewed in the last seconds."""
        container = self._blobs.get_container_client(CHECKPOINT_CONTAINER)
        tail = f"/{self.eventhub_name}/{self.consumer_group}/ownership/".lower()
        now = time.time()
        found = []
        try:
            for blob in container.list_blobs(include=["metadata"]):
                if tail not in str(blob.name) or not (blob.metadata or {}).get("ownerid"):
                    continue  # a released partition has an empty owner
                if now - blob.last_modified.timestamp() <= within_s:
                    found.append(str(blob.name).rsplit("/", 1)[1])
        except ResourceNotFoundError:
            return []
        return sorted(found)

    def pending(self, now_ms: int) -> tuple[int, int]:
        """(conversations owing work within the horizon, conversations in the table)."""
        rows = self._table.list_entities(select=["PartitionKey", "RowKey", "Revision", "Deadline"])
        pending = total = 0
        try:
            for row in rows:
                if str(row["PartitionKey"]).startswith(META_PREFIX) or str(
                    row["RowKey"]
                ).startswith(META_PREFIX):
                    continue
                total += 1
                revision = _number(row.get("Revision"))
                deadline = _number(row.get("Deadline"))
                if revision < 1 or deadline <= now_ms + self.horizon_ms:
                    pending += 1
        except ResourceNotFoundError:
            return 0, 0  # no table yet: nothing was ever applied
        return pending, total

    def look(self) -> IdleState:
        try:
            ends = self.last_enqueued()
            marks = self.checkpoints()
            pending, total = self.pending(int(time.time() * 1000))
        except (AzureError, EventHubError, OSError) as e:
            return IdleState({}, 0, 0, f"{type(e).__name__}: {str(e)[:160]}")
        backlog = {p: max(last - marks.get(p, -1), 0) for p, (last, _) in ends.items()}
        return IdleState(backlog, pending, total)

    def wait(
        self,
        timeout_s: float,
        *,
        poll_s: float = 1.0,
        confirmations: int = 2,
        on_look: Callable[[IdleState], None] | None = None,
    ) -> IdleState:
        """Poll until idle `confirmations` times in a row, or until `timeout_s` has passed."""
        deadline = time.monotonic() + timeout_s
        streak = 0
        while True:
            state = self.look()
            if on_look is not None:
                on_look(state)
            streak = streak + 1 if state.idle else 0
            if streak >= confirmations or time.monotonic() >= deadline:
                return state
            time.sleep(poll_s)

    def close(self) -> None:
        if self._hub is not None:
            self._hub.close()
            self._hub = None
        self._blobs.close()
        self._table.close()


def _number(value: Any) -> int:
    """An Int32 or Int64 property (the SDK wraps Int64 in an `EntityProperty`)."""
    value = getattr(value, "value", value)
    return int(value or 0)


def seed_checkpoints(probe: PipelineProbe, storage_connection_string: str) -> int:
    """Checkpoint the probe's consumer group at the hub's current end; returns partitions set."""
    namespace = probe.namespace()
    ends = {p: end for p, end in probe.last_enqueued().items() if end[0] >= 0}
    if not ends:
        return 0

    container = probe._blobs.get_container_client(CHECKPOINT_CONTAINER)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()

    async def write() -> None:
        store = BlobCheckpointStore.from_connection_string(
            storage_connection_string, CHECKPOINT_CONTAINER
        )
        async with store:
            for partition, (sequence, offset) in ends.items():
                await store.update_checkpoint(
                    {
                        "fully_qualified_namespace": namespace,
                        "eventhub_name": probe.eventhub_name,
                        "consumer_group": probe.consumer_group,
                        "partition_id": partition,
                        "sequence_number": sequence,
                        "offset": offset,
                    }
                )

    asyncio.run(write())
    return len(ends)
