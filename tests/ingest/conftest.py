"""Fixtures for the ingest tests against real services.

The shared session stack (`local_stack` in tests/conftest.py) serves the happy paths; tests
that stop or freeze Event Hubs get a private emulator (`private_emulator`) so that faults never
reach other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient
from azure.storage.blob import BlobServiceClient

from adapters.settings import IngestSettings
from adapters.wiring import IngestRuntime, ingest_runtime
from devstack.settings import eventhubs_emulator_connection_string
from devstack.stack import Stack
from functions import ingest as blueprint
from ingest.metrics import MetricsRegistry
from tests.conftest import OBSERVER_GROUP

ROOT = Path(__file__).resolve().parents[2]
HUB = "test-events"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PrivateEmulator:
    """An Event Hubs emulator process of our own, restartable on the same ports and data."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return eventhubs_emulator_connection_string(self.port)

    def start(self, timeout: float = 30) -> None:
        log = (self.data_dir.parent / "emulator.log").open("ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "devstack.eventhubs"),
                *("--config", str(ROOT / "devstack" / "eventhubs.config.json")),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--health-port", str(self.health_port), "--data-dir", str(self.data_dir)),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the emulator exited; see emulator.log"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.health_port}/health").status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"the Event Hubs emulator was not healthy within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def private_emulator(tmp_path: Path) -> Iterator[PrivateEmulator]:
    emulator = PrivateEmulator(tmp_path / "eventhubs")
    emulator.start()
    yield emulator
    if emulator.process is not None:
        emulator.thaw()
    emulator.stop()


def settings_for(eventhub_connection: str, storage_connection: str, **extra: str) -> IngestSettings:
    return IngestSettings.from_env(
        {
            "EventHubConnection": eventhub_connection,
            "EVENTHUB_NAME": HUB,
            "StateStorage": storage_connection,
            **extra,
        }
    )


RuntimeFactory = Callable[..., IngestRuntime]


@pytest_asyncio.fixture
async def install() -> AsyncIterator[RuntimeFactory]:
    """Install a runtime for the Blueprint functions; closed (in the test's loop) afterwards."""
    installed: list[IngestRuntime] = []

    def factory(settings: IngestSettings) -> IngestRuntime:
        runtime = ingest_runtime(settings, MetricsRegistry())
        blueprint.install_runtime(runtime)
        installed.append(runtime)
        return runtime

    previous = blueprint.install_runtime(None)
    yield factory
    for runtime in installed:
        await runtime.publisher.close()
        await runtime.dead_letters.close()
    blueprint.install_runtime(previous)


async def read_events(
    connection_string: str,
    message_ids: set[str],
    expected: int,
    timeout: float = 20,
) -> list[tuple[str, EventData]]:
    """(partition, event) of every event in HUB whose message_id property is in `message_ids`."""
    found: list[tuple[str, EventData]] = []
    done = asyncio.Event()

    async def on_event(partition: Any, event: EventData | None) -> None:
        if event is None:
            return
        if text(event.properties.get(b"message_id")) in message_ids:
            found.append((partition.partition_id, event))
            if len(found) >= expected:
                done.set()

    # The observer group: a host running the project app consumes $Default itself.
    client = EventHubConsumerClient.from_connection_string(
        connection_string, OBSERVER_GROUP, eventhub_name=HUB
    )
    task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
    await client.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return found


def text(value: object) -> str | None:
    """Application property values come back as bytes from the AMQP layer."""
    if isinstance(value, bytes):
        return value.decode()
    return None if value is None else str(value)


def properties(event: EventData) -> dict[str, str | None]:
    return {text(k) or "": text(v) for k, v in event.properties.items()}


def dead_letter_blobs(storage_connection: str, container: str = "deadletter") -> dict[str, Any]:
    """Blob name → (content bytes, metadata) of every dead letter stored."""
    with BlobServiceClient.from_connection_string(storage_connection) as service:
        client = service.get_container_client(container)
        if not client.exists():
            return {}
        return {
            blob.name: (client.download_blob(blob.name).readall(), dict(blob.metadata or {}))
            for blob in client.list_blobs(include=["metadata"])
        }


@pytest.fixture
def stack_settings(local_stack: Stack) -> Callable[..., IngestSettings]:
    """IngestSettings for the shared stack (extra app settings as keyword arguments)."""

    def make(**extra: str) -> IngestSettings:
        return settings_for(
            local_stack.eventhub_connection_string,
            local_stack.storage_connection_string,
            **extra,
        )

    return make
