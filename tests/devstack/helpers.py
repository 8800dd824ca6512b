"""Helpers for the local-host tests: produce with the SDK, read records, read checkpoint blobs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.eventhub import EventData, EventHubProducerClient
from azure.storage.blob import BlobServiceClient

from devstack.host.eventhub_trigger import CHECKPOINT_CONTAINER
from devstack.stack import Stack


# The SDK names the namespace after the endpoint host (`localhost`, plus `:port` when the
# port is not 5672) and, like the Functions host, lower-cases the blob names.
def namespace(stack: Stack) -> str:
    return "localhost" if stack.ports.amqp == 5672 else f"localhost:{stack.ports.amqp}"


def echo_env(records: Path, hub: str = "echo-basic") -> dict[str, str]:
    return {"ECHO_HUB": hub, "ECHO_RECORD_DIR": str(records), "ECHO_PRODUCER_HUB": hub}


def produce(stack: Stack, hub: str, bodies_by_key: dict[str, list[Any]]) -> None:
    """Send each key's bodies as one batch with that partition key."""
    with EventHubProducerClient.from_connection_string(
        stack.eventhub_connection_string, eventhub_name=hub
    ) as producer:
        for key, bodies in bodies_by_key.items():
            batch = producer.create_batch(partition_key=key)
            for body in bodies:
                batch.add(EventData(json.dumps(body)))
            producer.send_batch(batch)


def records(folder: Path, function: str) -> list[dict[str, Any]]:
    path = folder / f"{function}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    assert condition(), f"timed out after {timeout_s}s waiting for {what}"


@dataclass(frozen=True)
class Checkpoint:
    partition: str
    sequence_number: int
    offset: str


def checkpoint_prefix(stack: Stack, hub: str, consumer_group: str = "$Default") -> str:
    return f"{namespace(stack)}/{hub}/{consumer_group}/".lower()


def checkpoint_blobs(stack: Stack, hub: str) -> dict[str, dict[str, Any]]:
    """Blob name -> metadata under the hub's prefix in azure-webjobs-eventhub."""
    with BlobServiceClient.from_connection_string(stack.storage_connection_string) as service:
        container = service.get_container_client(CHECKPOINT_CONTAINER)
        if not container.exists():
            return {}
        return {
            blob.name: dict(blob.metadata or {})
            for blob in container.list_blobs(
                name_starts_with=checkpoint_prefix(stack, hub), include=["metadata"]
            )
        }


def checkpoints(stack: Stack, hub: str) -> dict[str, Checkpoint]:
    """Partition -> checkpoint, as the blob checkpoint store wrote it."""
    prefix = checkpoint_prefix(stack, hub) + "checkpoint/"
    found = {}
    for name, metadata in checkpoint_blobs(stack, hub).items():
        if name.startswith(prefix):
            partition = name.removeprefix(prefix)
            found[partition] = Checkpoint(
                partition, int(metadata["sequencenumber"]), metadata["offset"]
            )
    return found


def checkpoint_sequence(stack: Stack, hub: str, partition: str) -> int | None:
    """The checkpointed sequence number of one partition, None before the first checkpoint."""
    found = checkpoints(stack, hub).get(partition)
    return found.sequence_number if found is not None else None


def owned_partitions(stack: Stack, instance: int, function: str = "record_batch") -> set[str]:
    status = stack.host_status(instance) or {}
    for listener in status.get("listeners", []):
        if listener.get("function") == function:
            return set(listener.get("owned_partitions", []))
    return set()


def bodies_of(rows: Iterable[dict[str, Any]]) -> list[Any]:
    return [json.loads(row["body"]) for row in rows]
