"""The Event Hubs emulator against the real azure-eventhub SDK, sync and async, end to end.

One emulator process (free loopback ports, temp data dir) serves the module; the durability
and retention tests start their own. Nothing is mocked: every check goes through the SDK's
public API, except a raw socket that looks at the frames themselves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from azure.eventhub import (
    EventData,
    EventDataBatch,
    EventHubConsumerClient,
    EventHubProducerClient,
)
from azure.eventhub._pyamqp import _decode as sdk_decode
from azure.eventhub._pyamqp import _encode as sdk_encode
from azure.eventhub._pyamqp.endpoints import Source, Target
from azure.eventhub._pyamqp.performatives import AttachFrame, BeginFrame, OpenFrame, SASLInit
from azure.eventhub.aio import EventHubConsumerClient as AsyncConsumer
from azure.eventhub.aio import EventHubProducerClient as AsyncProducer
from azure.eventhub.amqp import AmqpAnnotatedMessage, AmqpMessageBodyType
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    EventDataSendError,
    EventHubError,
)

from adapters.partition_hash import partition_index
from devstack.eventhubs import wait_healthy
from devstack.eventhubs.health import fetch_health

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "devstack" / "eventhubs.config.json"
HUB = "test-events"  # 2 partitions
BIG_HUB = "genesys-events"  # 4 partitions


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Emulator:
    """One emulator process on free loopback ports; restartable on the same data dir."""

    data_dir: Path
    log_file: Path
    retention_hours: float | None = None
    sas_key: tuple[str, str] | None = None  # (key name, key) other than the emulator default
    port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        name, key = self.sas_key or ("RootManageSharedAccessKey", "SAS_KEY_VALUE")
        return (
            f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName={name};"
            f"SharedAccessKey={key};UseDevelopmentEmulator=true;"
        )

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "devstack.eventhubs",
            "--config",
            str(CONFIG),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--health-port",
            str(self.health_port),
            "--data-dir",
            str(self.data_dir),
            "--log-file",
            str(self.log_file),
        ]
        if self.retention_hours is not None:
            command += ["--retention-hours", str(self.retention_hours)]
        if self.sas_key is not None:
            command += ["--sas-key-name", self.sas_key[0], "--sas-key", self.sas_key[1]]
        self.process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL)
        try:
            wait_healthy("127.0.0.1", self.health_port, timeout=20)
        except TimeoutError as e:
            self.kill()
            raise AssertionError(f"emulator did not start: {e}\n{self.log_tail()}") from e

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(15)
        self.process = None
        return code

    def health(self) -> dict[str, Any]:
        return fetch_health("127.0.0.1", self.health_port)

    def partition_health(self, hub: str, partition: str) -> dict[str, Any]:
        hubs = {h["name"]: h for h in self.health()["hubs"]}
        return next(p for p in hubs[hub]["partitions"] if p["id"] == partition)

    def wait_receivers(self, hub: str, partition: str, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.partition_health(hub, partition)["receivers"] != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{hub}/{partition} never had {count} receivers")
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(encoding="utf-8").splitlines()[-lines:])

    def producer(self, hub: str = HUB, **kwargs: Any) -> EventHubProducerClient:
        return EventHubProducerClient.from_connection_string(
            self.connection_string, eventhub_name=hub, **kwargs
        )

    def consumer(
        self, hub: str = HUB, consumer_group: str = "$Default", **kwargs: Any
    ) -> EventHubConsumerClient:
        # No retries: errors the tests provoke should surface at once, not after backoff.
        kwargs.setdefault("retry_total", 0)
        return EventHubConsumerClient.from_connection_string(
            self.connection_string, consumer_group=consumer_group, eventhub_name=hub, **kwargs
        )


@contextlib.contextmanager
def running(emulator: Emulator) -> Iterator[Emulator]:
    emulator.start()
    try:
        yield emulator
    finally:
        if emulator.process is not None:
            emulator.kill()


def send(
    producer: EventHubProducerClient,
    bodies: list[str],
    *,
    partition_id: str | None = None,
    partition_key: str | None = None,
    properties: dict[str, Any] | None = None,
) -> None:
    """Send `bodies` as one batch."""
    batch = producer.create_batch(partition_id=partition_id, partition_key=partition_key)
    for body in bodies:
        event = EventData(body)
        if properties:
            event.properties = dict(properties)
        batch.add(event)
    producer.send_batch(batch)


def last_sequences(emulator: Emulator, hub: str = HUB) -> dict[str, int]:
    """Last sequence number of every partition, from the health report (one quick request)."""
    hubs = {h["name"]: h for h in emulator.health()["hubs"]}
    return {p["id"]: p["last_enqueued_sequence_number"] for p in hubs[hub]["partitions"]}


def last_sequence(emulator: Emulator, partition: str, hub: str = HUB) -> int:
    return last_sequences(emulator, hub)[partition]


@dataclass
class Receiving:
    """A consumer client receiving one partition in a thread, collecting events and errors."""

    client: EventHubConsumerClient
    events: list[EventData] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def start(self, partition: str, **kwargs: Any) -> Receiving:
        def on_event_batch(context: Any, batch: list[EventData]) -> None:
            with self._changed:
                self.events.extend(batch)
                if batch:
                    self.contexts.append(context)
                self._changed.notify_all()

        def on_error(context: Any, error: Exception) -> None:
            with self._changed:
                self.errors.append(error)
                self._changed.notify_all()

        kwargs.setdefault("max_wait_time", 0.5)
        self._thread = threading.Thread(
            target=self.client.receive_batch,
            kwargs={
                "on_event_batch": on_event_batch,
                "on_error": on_error,
                "partition_id": partition,
                **kwargs,
            },
            daemon=True,
        )
        self._thread.start()
        return self

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                msg = f"timed out: {len(self.events)} events, errors {self.errors!r}"
                raise AssertionError(msg)

    def wait_events(self, count: int, timeout: float = 10) -> list[EventData]:
        self.wait_for(lambda: len(self.events) >= count, timeout)
        return list(self.events)

    def wait_error(self, timeout: float = 10) -> Exception:
        self.wait_for(lambda: bool(self.errors), timeout)
        return self.errors[0]

    def close(self) -> None:
        self.client.close()
        if self._thread is not None:
            self._thread.join(15)

    def close_soon(self) -> None:
        """Close without waiting for the SDK's processor thread (it lingers about a second)."""
        threading.Thread(target=self.close, daemon=True).start()


def receive(
    emulator: Emulator, partition: str, count: int, hub: str = HUB, **kwargs: Any
) -> list[EventData]:
    """Receive at least `count` events from a partition (kwargs go to receive_batch).

    Returns once the emulator saw the receiver detach, so receiver counts stay exact.
    """
    attached = emulator.partition_health(hub, partition)["receivers"]
    receiving = Receiving(emulator.consumer(hub)).start(partition, **kwargs)
    try:
        return receiving.wait_events(count)
    finally:
        receiving.close_soon()
        emulator.wait_receivers(hub, partition, attached)


def pid_of(emulator: Emulator) -> int:
    assert emulator.process is not None
    return emulator.process.pid


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Like the stack tests, these need sockets and subprocesses (they start their own emulator).
pytestmark = [pytest.mark.stack, pytest.mark.slow]


# ============================================================================== fixtures


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    base = tmp_path_factory.mktemp("eventhubs")
    with running(Emulator(base / "data", base / "emulator.log")) as instance:
        yield instance


@pytest.fixture(scope="module")
def producer(emulator: Emulator) -> Iterator[EventHubProducerClient]:
    client = emulator.producer(HUB)
    yield client
    client.close()


@pytest.fixture(scope="module")
def big_producer(emulator: Emulator) -> Iterator[EventHubProducerClient]:
    client = emulator.producer(BIG_HUB)
    yield client
    client.close()


# ============================================================================== management


def test_hub_and_partition_properties(
    emulator: Emulator, big_producer: EventHubProducerClient
) -> None:
    hub = big_producer.get_eventhub_properties()
    assert hub["eventhub_name"] == BIG_HUB
    assert hub["partition_ids"] == ["0", "1", "2", "3"]
    assert hub["created_at"].tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - hub["created_at"]).total_seconds()) < 600

    empty = big_producer.get_partition_properties("3")
    assert empty == {
        "eventhub_name": BIG_HUB,
        "id": "3",
        "beginning_sequence_number": 0,
        "last_enqueued_sequence_number": -1,
        "last_enqueued_offset": "-1",
        "is_empty": True,
        "last_enqueued_time_utc": dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    }
    strict = emulator.producer(BIG_HUB, retry_total=0)
    try:
        for bad in ("9", "99", "boo"):  # the service: 400, com.microsoft:argument-out-of-range
            with pytest.raises(ConnectError, match="specified partition is invalid"):
                strict.get_partition_properties(bad)
    finally:
        strict.close()
    missing = emulator.producer("no-such-hub", retry_total=0)
    try:
        with pytest.raises(EventHubError, match="could not be found"):
            missing.get_eventhub_properties()
    finally:
        missing.close()


# ============================================================================== sending


def test_partition_keys_land_where_the_service_places_them(
    emulator: Emulator, big_producer: EventHubProducerClient
) -> None:
    # adapters.partition_hash is checked against the JS SDK's port of the service's resolver.
    keys = [f"conversation-{i}" for i in range(24)] + ["é中😀", "a/b#c?d"]
    before = last_sequences(emulator, BIG_HUB)
    expected = dict.fromkeys(before, 0)
    for key in keys:
        send(big_producer, [f"{key}:1", f"{key}:2"], partition_key=key)
        expected[str(partition_index(key, 4))] += 2
    after = last_sequences(emulator, BIG_HUB)
    assert {p: after[p] - before[p] for p in before} == expected
    assert all(count > 0 for count in expected.values())  # the keys cover every partition

    target = str(partition_index("conversation-0", 4))
    events = receive(
        emulator, target, expected[target], hub=BIG_HUB, starting_position=before[target]
    )
    for event in events:
        key = event.partition_key.decode()
        assert event.body_as_str().startswith(f"{key}:")
        assert str(partition_index(key, 4)) == target


def test_single_events_batches_and_partition_ids(
    emulator: Emulator, producer: EventHubProducerClient
) -> None:
    before = last_sequence(emulator, "0")
    producer.send_event(EventData("one"), partition_id="0")
    send(producer, ["two", "three", "four"], partition_id="0")
    producer.send_batch([EventData("five"), EventData(b"\x00six")], partition_id="0")
    assert last_sequence(emulator, "0") == before + 6
    events = receive(emulator, "0", 6, starting_position=before)
    bodies = [b"".join(e.body) for e in events]
    assert bodies == [b"one", b"two", b"three", b"four", b"five", b"\x00six"]
    assert [e.sequence_number for e in events] == list(range(before + 1, before + 7))
    assert all(e.partition_key is None for e in events)


def test_sends_without_key_or_partition_spread_round_robin(
    emulator: Emulator, big_producer: EventHubProducerClient
) -> None:
    before = last_sequences(emulator, BIG_HUB)
    for i in range(8):
        send(big_producer, [f"rr-{i}"])
    after = last_sequences(emulator, BIG_HUB)
    growth = {p: after[p] - before[p] for p in before}
    assert growth == {"0": 2, "1": 2, "2": 2, "3": 2}


def test_partition_keys_longer_than_128_characters_are_refused(
    emulator: Emulator, big_producer: EventHubProducerClient
) -> None:
    before = last_sequences(emulator, BIG_HUB)
    batch = big_producer.create_batch(partition_key="k" * 129)
    batch.add(EventData(b"too long a key"))
    with pytest.raises(EventDataSendError) as raised:
        big_producer.send_batch(batch)
    assert raised.value.error == "invalid-field"
    assert last_sequences(emulator, BIG_HUB) == before
    longest = big_producer.create_batch(partition_key="k" * 128)
    longest.add(EventData(b"fits"))
    big_producer.send_batch(longest)
    after = last_sequences(emulator, BIG_HUB)
    assert sum(after[p] - before[p] for p in before) == 1


def test_one_mebibyte_limit(emulator: Emulator, producer: EventHubProducerClient) -> None:
    batch = producer.create_batch(partition_id="1")
    assert batch.max_size_in_bytes == 1024 * 1024  # what the emulator advertised on the link
    with pytest.raises(ValueError, match="size limit"):
        batch.add(EventData(b"x" * (1024 * 1024)))

    # Past the client-side check, the emulator itself refuses the transfer.
    before = last_sequence(emulator, "1")
    oversized = EventDataBatch(max_size_in_bytes=4 * 1024 * 1024, partition_id="1")
    oversized.add(EventData(b"x" * (1536 * 1024)))
    with pytest.raises(EventDataSendError) as raised:
        producer.send_batch(oversized)
    assert raised.value.error == "link:message-size-exceeded"
    assert last_sequence(emulator, "1") == before
    producer.send_event(EventData("still fine"), partition_id="1")  # the link survived
    assert last_sequence(emulator, "1") == before + 1

    # The largest event that fits goes through and comes back in several frames, intact.
    largest = producer.create_batch(partition_id="1")
    body = bytes(range(256)) * 4000  # 1,024,000 bytes
    largest.add(EventData(body))
    producer.send_batch(largest)
    (received,) = receive(emulator, "1", 1, starting_position=before + 1)
    assert b"".join(received.body) == body
    assert received.sequence_number == before + 2


# ============================================================================== receiving


def test_every_start_position(emulator: Emulator, producer: EventHubProducerClient) -> None:
    base = last_sequence(emulator, "1")
    for i in range(6):
        producer.send_event(EventData(f"pos-{i}"), partition_id="1")
        time.sleep(0.003)  # distinct enqueued times
    events = receive(emulator, "1", 6, starting_position=base)  # exclusive sequence number
    assert [e.body_as_str() for e in events] == [f"pos-{i}" for i in range(6)]
    first, third = events[0], events[2]
    last = events[-1].sequence_number
    assert last == base + 6
    beginning = producer.get_partition_properties("1")["beginning_sequence_number"]

    cases = [  # (starting position, inclusive, first sequence number expected)
        (third.offset, True, third.sequence_number),
        (third.offset, False, third.sequence_number + 1),
        (third.sequence_number, True, third.sequence_number),
        (third.sequence_number, False, third.sequence_number + 1),
        (third.enqueued_time, True, third.sequence_number),
        (third.enqueued_time, False, third.sequence_number + 1),
        (first.offset, False, first.sequence_number + 1),
        ("-1", False, beginning),
    ]
    # All at once (four per consumer group, within the five-receiver limit) to save time.
    receivers = [
        Receiving(emulator.consumer(consumer_group=("$Default", "cg1")[n % 2])).start(
            "1", starting_position=position, starting_position_inclusive=inclusive
        )
        for n, (position, inclusive, _) in enumerate(cases)
    ]
    try:
        for receiving, (position, inclusive, expected_first) in zip(receivers, cases, strict=True):
            got = receiving.wait_events(last - expected_first + 1)
            assert [e.sequence_number for e in got] == list(range(expected_first, last + 1)), (
                position,
                inclusive,
            )
    finally:
        for receiving in receivers:
            receiving.close_soon()
        emulator.wait_receivers(HUB, "1", 0)


def test_latest_sees_only_new_events(emulator: Emulator, producer: EventHubProducerClient) -> None:
    producer.send_event(EventData("old"), partition_id="0")
    receiving = Receiving(emulator.consumer()).start("0", starting_position="@latest")
    try:
        emulator.wait_receivers(HUB, "0", 1)
        producer.send_event(EventData("new"), partition_id="0")
        events = receiving.wait_events(1)
        assert [e.body_as_str() for e in events] == ["new"]
    finally:
        receiving.close()


def test_annotations_and_properties_are_delivered(
    emulator: Emulator, producer: EventHubProducerClient
) -> None:
    before = last_sequence(emulator, "0")
    event = EventData('{"a": 1}')
    event.properties = {"format": "envelope", "attempt": 3}
    event.content_type = "application/json"
    event.correlation_id = "corr-1"
    event.message_id = "msg-1"
    batch = producer.create_batch(partition_id="0")
    batch.add(event)
    batch.add(EventData("second"))
    batch.add(AmqpAnnotatedMessage(value_body={"kind": "value"}, header={"durable": True}))
    producer.send_batch(batch)
    events = receive(emulator, "0", 3, starting_position=before)
    first, second, value = events
    assert value.body_type == AmqpMessageBodyType.VALUE
    assert value.body == {b"kind": b"value"}
    assert value.raw_amqp_message.header.durable is True
    assert value.sequence_number == before + 3
    assert isinstance(first.offset, str) and isinstance(second.offset, str)
    assert int(second.offset) > int(first.offset)
    assert (first.sequence_number, second.sequence_number) == (before + 1, before + 2)
    assert first.enqueued_time is not None and first.enqueued_time.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - first.enqueued_time).total_seconds()) < 60
    assert first.body_as_json() == {"a": 1}
    assert first.properties == {b"format": b"envelope", b"attempt": 3}
    assert first.content_type == "application/json"
    assert first.correlation_id == "corr-1"
    assert first.message_id == "msg-1"
    system = first.system_properties
    assert system[b"x-opt-sequence-number"] == before + 1
    assert system[b"x-opt-offset"] == first.offset.encode()


def test_last_enqueued_event_properties(
    emulator: Emulator, producer: EventHubProducerClient
) -> None:
    send(producer, ["m1", "m2", "m3"], partition_id="1")
    properties = producer.get_partition_properties("1")
    receiving = Receiving(emulator.consumer()).start(
        "1", starting_position="-1", track_last_enqueued_event_properties=True
    )
    try:
        receiving.wait_events(1)
        last = receiving.contexts[0].last_enqueued_event_properties
    finally:
        receiving.close()
    assert last["sequence_number"] == properties["last_enqueued_sequence_number"]
    assert last["offset"] == properties["last_enqueued_offset"]
    assert last["enqueued_time"] == properties["last_enqueued_time_utc"]
    assert abs((dt.datetime.now(dt.UTC) - last["retrieval_time"]).total_seconds()) < 60


def test_owner_level_takes_over_and_lower_is_refused(emulator: Emulator) -> None:
    first = Receiving(emulator.consumer(consumer_group="cg1")).start(
        "0", starting_position="@latest", owner_level=1
    )
    second = Receiving(emulator.consumer(consumer_group="cg1"))
    third = Receiving(emulator.consumer(consumer_group="cg1"))
    plain = Receiving(emulator.consumer(consumer_group="cg1"))
    try:
        emulator.wait_receivers(HUB, "0", 1)
        second.start("0", starting_position="@latest", owner_level=2)
        stolen = first.wait_error()
        assert isinstance(stolen, EventHubError) and stolen.error == "link:stolen"
        third.start("0", starting_position="@latest", owner_level=1)
        plain.start("0", starting_position="@latest")
        refused = third.wait_error()
        assert isinstance(refused, EventHubError) and refused.error == "link:stolen"
        assert "higher epoch '2'" in str(refused)
        assert "without epoch" in str(plain.wait_error())
        assert not second.errors
        assert emulator.partition_health(HUB, "0")["receivers"] == 1  # only the owner
    finally:
        for receiving in (first, second, third, plain):
            receiving.close_soon()
        emulator.wait_receivers(HUB, "0", 0)


def test_at_most_five_receivers_per_partition_and_group(emulator: Emulator) -> None:
    receivers = [Receiving(emulator.consumer(consumer_group="cg1")) for _ in range(6)]
    other = Receiving(emulator.consumer(consumer_group="$Default"))
    try:
        for receiving in receivers[:5]:
            receiving.start("1", starting_position="@latest")
        emulator.wait_receivers(HUB, "1", 5)
        receivers[5].start("1", starting_position="@latest")
        error = receivers[5].wait_error()
        assert isinstance(error, EventHubError) and error.error == "resource-limit-exceeded"
        other.start("1", starting_position="@latest")  # another group has its own five
        emulator.wait_receivers(HUB, "1", 6)
        assert not other.errors
    finally:
        for receiving in [*receivers, other]:
            receiving.close_soon()
        emulator.wait_receivers(HUB, "1", 0)


def test_unknown_consumer_group_is_not_found(emulator: Emulator) -> None:
    receiving = Receiving(emulator.consumer(consumer_group="nope")).start(
        "0", starting_position="-1"
    )
    try:
        assert "could not be found" in str(receiving.wait_error())
    finally:
        receiving.close_soon()


# ============================================================================== async


@pytest.mark.asyncio
async def test_async_producer_and_load_balanced_consumer(emulator: Emulator) -> None:
    producer = AsyncProducer.from_connection_string(emulator.connection_string, eventhub_name=HUB)
    async with producer:
        start = {
            p: (await producer.get_partition_properties(p))["last_enqueued_sequence_number"]
            for p in ("0", "1")
        }
        keys = [f"async-{i}" for i in range(10)]
        for key in keys:
            batch = await producer.create_batch(partition_key=key)
            batch.add(EventData(key))
            await producer.send_batch(batch)
        await producer.send_event(EventData("async-single"), partition_id="1")

    consumer = AsyncConsumer.from_connection_string(
        emulator.connection_string,
        consumer_group="$Default",
        eventhub_name=HUB,
        load_balancing_interval=0.5,
    )
    seen: dict[str, str] = {}
    done = asyncio.Event()

    async def on_event(context: Any, event: EventData | None) -> None:
        if event is not None:
            seen[event.body_as_str()] = context.partition_id
            if len(seen) == len(keys) + 1:
                done.set()

    task = asyncio.create_task(
        consumer.receive(on_event=on_event, starting_position=start, max_wait_time=0.5)
    )
    try:
        await asyncio.wait_for(done.wait(), 20)
    finally:
        await consumer.close()
        await asyncio.wait_for(task, 20)
    assert seen == {
        **{key: str(partition_index(key, 2)) for key in keys},
        "async-single": "1",
    }


# ============================================================================== durability


def test_kill_and_restart_keeps_events_numbers_and_offsets(tmp_path: Path) -> None:
    instance = Emulator(tmp_path / "data", tmp_path / "emulator.log")
    with running(instance):
        # One producer stays open across the crash, as an app's would (short retry backoff).
        producer = instance.producer(BIG_HUB, retry_backoff_factor=0.05)
        try:
            send(producer, [f"d-{i}" for i in range(5)], partition_id="0")
            send(producer, ["k-1", "k-2"], partition_key="durable")
            before = producer.get_partition_properties("0")
            before_health = instance.health()["hubs"]
            created_at = producer.get_eventhub_properties()["created_at"]
            events = receive(instance, "0", 5, hub=BIG_HUB, starting_position="-1")
            checkpoint = events[2]  # as if a consumer had checkpointed here
            assert checkpoint.offset is not None

            instance.kill()
            instance.start()  # same ports, same data dir

            assert producer.get_partition_properties("0") == before
            assert producer.get_eventhub_properties()["created_at"] == created_at
            assert instance.health()["hubs"] == before_health  # every partition, every field
            resumed = receive(instance, "0", 2, hub=BIG_HUB, starting_position=checkpoint.offset)
            assert [(e.sequence_number, e.offset, e.body_as_str()) for e in resumed] == [
                (e.sequence_number, e.offset, e.body_as_str()) for e in events[3:5]
            ]
            producer.send_event(EventData("after-crash"), partition_id="0")  # reconnects

            assert instance.stop() == 0  # SIGTERM: clean shutdown, clients told to come back
            assert "eventhubs emulator stopped" in instance.log_tail()
            instance.start()
            producer.send_event(EventData("after-stop"), partition_id="0")
        finally:
            producer.close()
        newest = receive(instance, "0", 2, hub=BIG_HUB, starting_position=events[-1].offset)
        assert [e.sequence_number for e in newest] == [
            events[-1].sequence_number + 1,
            events[-1].sequence_number + 2,
        ]
        assert int(events[-1].offset) < int(newest[0].offset) < int(newest[1].offset)
        assert [e.body_as_str() for e in newest] == ["after-crash", "after-stop"]


def test_retention_trims_old_events(tmp_path: Path) -> None:
    # 0.0003 h = 1.08 s: segments roll after 0.27 s, retention passes run every 0.108 s.
    instance = Emulator(tmp_path / "data", tmp_path / "emulator.log", retention_hours=0.0003)
    with running(instance):
        producer = instance.producer()
        try:
            send(producer, [f"old-{i}" for i in range(4)], partition_id="1")
            deadline = time.monotonic() + 15
            while instance.partition_health(HUB, "1")["begin_sequence_number"] < 4:
                assert time.monotonic() < deadline, instance.log_tail()
                time.sleep(0.05)
            properties = producer.get_partition_properties("1")
            assert properties["is_empty"] is True
            assert properties["last_enqueued_sequence_number"] == 3
            send(producer, ["fresh"], partition_id="1")
            events = receive(instance, "1", 1, starting_position="-1")
        finally:
            producer.close()
        assert [(e.sequence_number, e.body_as_str()) for e in events] == [(4, "fresh")]
        assert "retention trimmed" in instance.log_tail(200)


# ============================================================================== the wire


def _frame(performative: Any, channel: int = 0) -> bytes:
    header, body = sdk_encode.encode_frame(performative)
    return bytes(header) + struct.pack(">H", channel) + bytes(body or b"")


def _read_frames(
    sock: socket.socket, stop: Callable[[list[tuple[int, list[Any]]]], bool]
) -> list[tuple[int, list[Any]]]:
    """Read and decode AMQP frames with the SDK's decoder until `stop` is satisfied."""
    buffer = b""
    frames: list[tuple[int, list[Any]]] = []
    sock.settimeout(5)
    while not stop(frames):
        buffer += sock.recv(65536)
        while len(buffer) >= 8:
            if buffer.startswith(b"AMQP"):
                buffer = buffer[8:]
                continue
            size, doff = struct.unpack_from(">IB", buffer)
            if len(buffer) < size:
                break
            if size > 8 and buffer[5] == 0:  # skip heartbeats and SASL frames
                frames.append(sdk_decode.decode_frame(memoryview(buffer[doff * 4 : size])))
            buffer = buffer[size:]
    return frames


def _open_raw(sock: socket.socket) -> None:
    """SASL ANONYMOUS, open, and begin a session on channel 1, as the SDKs do."""
    sock.sendall(b"AMQP\x03\x01\x00\x00")
    sasl_init = SASLInit(mechanism=b"ANONYMOUS", initial_response=b"", hostname=None)
    header, body = sdk_encode.encode_frame(sasl_init, frame_type=b"\x01")
    sock.sendall(bytes(header) + b"\x00\x00" + bytes(body or b""))
    sock.sendall(b"AMQP\x00\x01\x00\x00")
    sock.sendall(
        _frame(OpenFrame("raw", "127.0.0.1", 65536, 8, None, None, None, None, None, None))
    )
    sock.sendall(_frame(BeginFrame(None, 0, 100, 100, 8, None, None, None), channel=1))


def test_every_performative_on_the_wire_has_its_full_field_count(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port)) as sock:
        _open_raw(sock)
        attach = AttachFrame(
            "raw-link", 0, True, 0, 0,
            Source(address=f"amqps://127.0.0.1/{HUB}/ConsumerGroups/nope/Partitions/0"),
            Target(address="raw-target"),
            None, None, None, None, None, None, None,
        )  # fmt: skip
        sock.sendall(_frame(attach, channel=1))
        frames = _read_frames(sock, lambda got: any(kind == 0x16 for kind, _ in got))
    counts = {kind: len(fields) for kind, fields in frames}
    assert counts == {0x10: 10, 0x11: 8, 0x12: 14, 0x16: 3}
    attach_fields = next(fields for kind, fields in frames if kind == 0x12)
    assert len(attach_fields[5]) == 11 and len(attach_fields[6]) == 7  # source, target
    detach_fields = next(fields for kind, fields in frames if kind == 0x16)
    # No put-token on this connection: the service's answer is unauthorized, not not-found.
    assert detach_fields[2][0] == b"amqp:unauthorized-access" and len(detach_fields[2]) == 3
    open_fields = next(fields for kind, fields in frames if kind == 0x10)
    assert open_fields[0] == b"devstack-eventhubs"


def test_health_endpoint_reports_hubs_and_partitions(emulator: Emulator) -> None:
    report = emulator.health()
    hubs = {hub["name"]: hub for hub in report["hubs"]}
    assert set(hubs) == {BIG_HUB, HUB}
    assert [p["id"] for p in hubs[BIG_HUB]["partitions"]] == ["0", "1", "2", "3"]
    assert hubs[HUB]["consumer_groups"] == ["$Default", "cg1"]
    assert report["namespace"] == "emulatorNs1"
    with pytest.raises(TimeoutError, match="not healthy"):
        wait_healthy("127.0.0.1", free_port(), timeout=0.3)


# ============================================================================== errors


def test_a_start_past_the_last_event_is_an_argument_error(
    emulator: Emulator, producer: EventHubProducerClient
) -> None:
    producer.send_event(EventData("the last one"), partition_id="0")
    last = producer.get_partition_properties("0")
    past = [
        (last["last_enqueued_sequence_number"] + 1, "supplied sequence number"),
        (str(int(last["last_enqueued_offset"]) + 1), "supplied offset"),
    ]
    for position, words in past:
        receiving = Receiving(emulator.consumer()).start("0", starting_position=position)
        try:
            error = receiving.wait_error()
        finally:
            receiving.close_soon()
        assert isinstance(error, ConnectError) and error.error == "argument-error", error
        assert words in str(error)
    # The last event itself, and "after it", are fine: the receiver waits for new events.
    fine = Receiving(emulator.consumer()).start(
        "0",
        starting_position=last["last_enqueued_sequence_number"],
        starting_position_inclusive=True,
    )
    try:
        assert [e.body_as_str() for e in fine.wait_events(1)] == ["the last one"]
    finally:
        fine.close()


def test_the_python_sdk_checks_partition_ids_itself(big_producer: EventHubProducerClient) -> None:
    # Before sending or receiving, as against Azure; the emulator's own answer to a link on
    # partition 99 or boo (argument-out-of-range) is checked by the JS suite, whose SDK asks it.
    for bad in ("99", "boo"):
        with pytest.raises(ConnectError, match=f"Invalid partition {bad}"):
            big_producer.send_batch([EventData("x")], partition_id=bad)


# ============================================================================== SAS


def _sas(
    uri: str, expiry_s: int, key: str = "SAS_KEY_VALUE", name: str = "RootManageSharedAccessKey"
) -> str:
    encoded = quote_plus(uri)
    digest = hmac.new(key.encode(), f"{encoded}\n{expiry_s}".encode(), hashlib.sha256).digest()
    signature = quote_plus(base64.b64encode(digest).decode())
    return f"SharedAccessSignature sr={encoded}&sig={signature}&se={expiry_s}&skn={name}"


def test_wrong_keys_and_bad_tokens_are_unauthorized(emulator: Emulator) -> None:
    good = emulator.connection_string
    endpoint = f"sb://127.0.0.1:{emulator.port}"
    now = int(time.time())
    with_token = "Endpoint={};SharedAccessSignature={};UseDevelopmentEmulator=true;".format
    cases = {
        "InvalidSignature": good.replace("SAS_KEY_VALUE", "NOT_THE_KEY"),
        "no shared access policy 'Nobody'": good.replace("RootManageSharedAccessKey", "Nobody"),
        "ExpiredToken": with_token(endpoint, _sas(f"{endpoint}/{HUB}", now - 60)),
        "InvalidAudience": with_token(endpoint, _sas(f"{endpoint}/{BIG_HUB}", now + 600)),
    }
    for reason, connection_string in cases.items():
        client = EventHubProducerClient.from_connection_string(
            connection_string, eventhub_name=HUB, retry_total=0
        )
        try:
            with pytest.raises(AuthenticationError, match=reason):
                client.get_eventhub_properties()
            with pytest.raises(AuthenticationError, match=reason):
                client.send_event(EventData("refused"), partition_id="0")
        finally:
            client.close()
    # A token made with the right key, for the hub, works like the key itself.
    valid = with_token(endpoint, _sas(f"{endpoint}/{HUB}", now + 600))
    client = EventHubProducerClient.from_connection_string(valid, eventhub_name=HUB, retry_total=0)
    try:
        assert client.get_eventhub_properties()["partition_ids"] == ["0", "1"]
        client.send_event(EventData("allowed"), partition_id="0")
    finally:
        client.close()


def test_another_key_configured_for_the_stack_is_the_only_one_accepted(tmp_path: Path) -> None:
    instance = Emulator(
        tmp_path / "data", tmp_path / "emulator.log", sas_key=("Sender", "c2VjcmV0")
    )
    with running(instance):
        assert instance.health()["sas_key_name"] == "Sender"
        default = instance.connection_string.replace("Sender", "RootManageSharedAccessKey").replace(
            "c2VjcmV0", "SAS_KEY_VALUE"
        )
        refused = EventHubProducerClient.from_connection_string(
            default, eventhub_name=HUB, retry_total=0
        )
        try:
            with pytest.raises(AuthenticationError, match="no shared access policy"):
                refused.get_eventhub_properties()
        finally:
            refused.close()
        accepted = instance.producer()
        try:
            assert accepted.get_partition_properties("1")["is_empty"] is True
        finally:
            accepted.close()


# ============================================================================== hostile bytes


def _exchange(port: int, payload: bytes) -> tuple[bytes, float]:
    """Send `payload`, read until the emulator closes: (everything read, seconds it took)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        sock.sendall(payload)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started


# The start of a TLS 1.2 ClientHello, as an SDK sends it without UseDevelopmentEmulator=true.
TLS_CLIENT_HELLO = bytes.fromhex("16030100f4010000f00303") + bytes(range(32)) + b"\x00" * 200


@pytest.mark.parametrize(
    "greeting",
    [
        TLS_CLIENT_HELLO,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00",
        b"AMQP\x02\x01\x00\x00",
    ],
    ids=["tls-client-hello", "http", "one-byte", "amqp-over-tls-header"],
)
def test_anything_but_an_amqp_header_gets_the_amqp_header_and_a_close(
    emulator: Emulator, greeting: bytes
) -> None:
    answer, seconds = _exchange(emulator.port, greeting)
    assert answer == b"AMQP\x00\x01\x00\x00"
    assert seconds < 0.5
    assert "not an AMQP client" in emulator.log_tail(5)


def _close_error(answer: bytes) -> list[Any]:
    frames = []
    buffer = answer[8:]  # after the protocol header
    while len(buffer) >= 8:
        size, doff = struct.unpack_from(">IB", buffer)
        frames.append(sdk_decode.decode_frame(memoryview(buffer[doff * 4 : size])))
        buffer = buffer[size:]
    closes = [fields for kind, fields in frames if kind == 0x18]
    assert closes, frames
    error: list[Any] = closes[0][0]
    return error


@pytest.mark.parametrize("opened", [True, False], ids=["after-open", "before-open"])
def test_a_frame_over_the_max_frame_size_is_a_framing_error(
    emulator: Emulator, opened: bool
) -> None:
    open_frame = _frame(OpenFrame("raw", "127.0.0.1", 65536, 8, None, None, None, None, None, None))
    oversized = struct.pack(">IBBH", 16 * 1024 * 1024, 2, 0, 0) + b"x" * 1000  # 16 MiB announced
    payload = b"AMQP\x00\x01\x00\x00" + (open_frame if opened else b"") + oversized
    answer, seconds = _exchange(emulator.port, payload)
    assert seconds < 0.5  # nothing waits for the 16 MiB
    error = _close_error(answer)
    assert error[0] == b"amqp:connection:framing-error"
    assert b"1048576" in error[1]  # names the limit
    # The emulator serves the next client as usual.
    assert emulator.health()["status"] == "healthy"


def test_a_frame_shorter_than_its_header_is_a_framing_error(emulator: Emulator) -> None:
    answer, _ = _exchange(emulator.port, b"AMQP\x00\x01\x00\x00" + struct.pack(">IBBH", 4, 2, 0, 0))
    assert _close_error(answer)[0] == b"amqp:connection:framing-error"


def test_the_sdk_without_the_emulator_flag_fails_fast_not_after_a_minute(
    emulator: Emulator,
) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (make setup)"
    script = (
        "const {EventHubProducerClient} = require('@azure/event-hubs');"
        "const c = new EventHubProducerClient(process.argv[1], 'test-events',"
        " {retryOptions: {maxRetries: 0, timeoutInMs: 30000}});"
        "const t = Date.now();"
        "c.getEventHubProperties().then(() => process.exit(3)).catch((e) => {"
        " console.log(JSON.stringify({code: e.code, seconds: (Date.now() - t) / 1000}));"
        " return c.close(); });"
    )
    tls = emulator.connection_string.replace("UseDevelopmentEmulator=true;", "")
    done = subprocess.run(
        [node, "-e", script, tls], capture_output=True, cwd=ROOT, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    outcome = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert outcome["seconds"] < 1.0, outcome  # it was 60 s: the emulator waited for a 369 MB frame
    assert "SSL" in str(outcome["code"]), outcome
