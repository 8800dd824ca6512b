"""Fixtures for the ops tests: settings for one scenario, the CLI, SDK producers and consumers.

The consumer here is the Event Hubs SDK's own processor with its `BlobCheckpointStore` on the
host's container, which is what the Functions host (and the local host) run: a checkpoint the
ops tools write must move it, and one it writes must be read by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.aio import EventHubConsumerClient, PartitionContext
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob import BlobServiceClient
from typer.testing import CliRunner, Result

from adapters.checkpoints import CONTAINER
from devstack.stack import Stack
from ops.cli import app

GROUP = "$Default"


@dataclass
class Scenario:
    """One test's settings file, and helpers bound to it."""

    stack: Stack
    hub: str
    values: dict[str, str]
    settings_file: Path

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run `python -m ops …` with this scenario's settings."""
        # The environment wins over the file: pin it to the scenario so the shell cannot leak in.
        runner = CliRunner()
        merged = {**self.values, **(env or {})}
        return runner.invoke(app, [*args, "--settings", str(self.settings_file)], env=merged)

    def cli_json(self, *args: str) -> Any:
        """Run a command with --json and parse its output (fails the test on a bad exit)."""
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def produce(self, partition: str, bodies: list[bytes], key: str | None = None) -> None:
        """Send events to one partition (or by partition key)."""
        producer = EventHubProducerClient.from_connection_string(
            self.stack.eventhub_connection_string, eventhub_name=self.hub
        )
        with producer:
            batch = (
                producer.create_batch(partition_key=key)
                if key
                else producer.create_batch(partition_id=partition)
            )
            for body in bodies:
                batch.add(EventData(body))
            producer.send_batch(batch)

    def consume(
        self,
        partition: str,
        count: int,
        *,
        checkpoint_at: int | None = None,
        wait_s: float = 5.0,
    ) -> list[EventData]:
        """Receive `count` events where the checkpoints say to resume (the host's way)."""
        return asyncio.run(self._consume(partition, count, checkpoint_at, wait_s))

    async def _consume(
        self, partition: str, count: int, checkpoint_at: int | None, wait_s: float
    ) -> list[EventData]:
        self.ensure_checkpoint_container()  # the host creates it before it starts its processors
        store, client = self.host_consumer()
        received: list[EventData] = []
        done = asyncio.Event()

        async def on_event(context: PartitionContext, event: EventData | None) -> None:
            if event is None:
                done.set()
                return
            if len(received) >= count:  # prefetched events keep coming until the close
                return
            received.append(event)
            if checkpoint_at is not None and len(received) == checkpoint_at:
                await context.update_checkpoint(event)
            if len(received) >= count:
                done.set()

        async with client:
            task = asyncio.create_task(
                client.receive(
                    on_event, partition_id=partition, max_wait_time=wait_s, starting_position="-1"
                )
            )
            try:
                await asyncio.wait_for(done.wait(), timeout=wait_s * 4)
            finally:
                await client.close()
                await _cancel(task)
        await store.close()
        return received

    def hold_partitions(self) -> Holder:
        """Run a load-balancing processor (owning partitions) in a thread until stopped."""
        self.ensure_checkpoint_container()
        holder = Holder(self)
        holder.start()
        return holder

    def host_consumer(self, **options: Any) -> tuple[BlobCheckpointStore, EventHubConsumerClient]:
        """A consumer of the host's group on its checkpoint store (the caller closes both)."""
        store = BlobCheckpointStore.from_connection_string(
            self.stack.storage_connection_string, CONTAINER
        )
        client = EventHubConsumerClient.from_connection_string(
            self.stack.eventhub_connection_string,
            consumer_group=GROUP,
            eventhub_name=self.hub,
            checkpoint_store=store,
            **options,
        )
        return store, client

    def ensure_checkpoint_container(self) -> None:
        """Create the host's checkpoint container if missing."""
        service = BlobServiceClient.from_connection_string(self.stack.storage_connection_string)
        with service, contextlib.suppress(ResourceExistsError):
            service.create_container(CONTAINER)


class Holder(threading.Thread):
    """A consumer that claims partitions through the checkpoint store, like a running host."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(daemon=True)
        self._scenario = scenario
        self._stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._hold())

    async def _hold(self) -> None:
        store, client = self._scenario.host_consumer(load_balancing_interval=0.5)

        async def on_event(_: PartitionContext, __: EventData | None) -> None:
            return None

        task = asyncio.create_task(client.receive(on_event, max_wait_time=1))
        while not self._stopping.is_set():
            await asyncio.sleep(0.2)
        await client.close()  # relinquishes ownership
        await _cancel(task)
        await store.close()

    def stop(self) -> None:
        """Close the consumer and wait for it."""
        self._stopping.set()
        self.join(timeout=30)


async def _cancel(task: asyncio.Task[None]) -> None:
    """A closed client's receive lingers for its link timeout: cancel it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


ScenarioFactory = Callable[..., Scenario]


@pytest.fixture
def scenario(local_stack: Stack, tmp_path: Path) -> ScenarioFactory:
    """`scenario(hub)`: settings for the session stack, with this test's own containers/table."""

    def make(hub: str, **extra: str) -> Scenario:
        suffix = uuid.uuid4().hex[:8]
        values = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": local_stack.storage_connection_string,
            "StateStorage": local_stack.storage_connection_string,
            "EventHubConnection": local_stack.eventhub_connection_string,
            "EVENTHUB_NAME": hub,
            "EVENTHUB_CONSUMER_GROUP": GROUP,
            "STATE_TABLE_NAME": f"opsstate{suffix}",
            "RECORDS_CONTAINER": f"ops-records-{suffix}",
            "DEADLETTER_CONTAINER": f"ops-deadletter-{suffix}",
            "WEBHOOK_SECRET": "",
            **extra,
        }
        path = tmp_path / f"settings-{suffix}.json"
        path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
        return Scenario(local_stack, hub, values, path)

    return make
