"""Throughput of the emulator with the real SDK: `python -m devstack.eventhubs.benchmark`.

Starts an emulator on free ports with a temporary data dir, sends N events in full batches
to one partition with the sync producer, receives them back with the sync consumer, and
prints events/s for both plus the emulator's CPU time per event (the SDK side is usually the
bottleneck: a single pure-Python client process).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient

from devstack.eventhubs.auth import DEFAULT_KEY, DEFAULT_KEY_NAME
from devstack.eventhubs.health import wait_healthy

HUB = "test-events"
CONFIG = Path(__file__).resolve().parent.parent / "eventhubs.config.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connection_string(port: int) -> str:
    return (
        f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName={DEFAULT_KEY_NAME};"
        f"SharedAccessKey={DEFAULT_KEY};UseDevelopmentEmulator=true;"
    )


def _send(connection_string: str, count: int, body: bytes) -> tuple[float, int]:
    producer = EventHubProducerClient.from_connection_string(connection_string, eventhub_name=HUB)
    with producer:
        producer.send_event(EventData(b"warm-up"), partition_id="0")
        start_sequence = int(
            producer.get_partition_properties("0")["last_enqueued_sequence_number"]
        )
        started = time.perf_counter()
        sent = 0
        while sent < count:
            batch = producer.create_batch(partition_id="0")
            while sent < count:
                try:
                    batch.add(EventData(body))
                except ValueError:
                    break
                sent += 1
            producer.send_batch(batch)
        return time.perf_counter() - started, start_sequence


def _receive(connection_string: str, count: int, after_sequence: int) -> float:
    consumer = EventHubConsumerClient.from_connection_string(
        connection_string, consumer_group="$Default", eventhub_name=HUB
    )
    received = 0
    first: list[float] = []
    done = threading.Event()

    def on_batch(_: Any, events: list[EventData]) -> None:
        nonlocal received
        if events and not first:
            first.append(time.perf_counter())
        received += len(events)
        if received >= count:
            done.set()

    thread = threading.Thread(
        target=consumer.receive_batch,
        kwargs={
            "on_event_batch": on_batch,
            "partition_id": "0",
            "starting_position": after_sequence,
            "max_batch_size": 300,
        },
        daemon=True,
    )
    thread.start()
    if not done.wait(300):
        raise SystemExit(f"received only {received} of {count} events")
    elapsed = time.perf_counter() - first[0]
    consumer.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.eventhubs.benchmark")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--body-bytes", type=int, default=256)
    args = parser.parse_args()
    port, health_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        command = [
            sys.executable,
            "-m",
            "devstack.eventhubs",
            "--config",
            str(CONFIG),
            "--port",
            str(port),
            "--health-port",
            str(health_port),
            "--data-dir",
            data_dir,
            "--log-level",
            "WARNING",
        ]
        server = subprocess.Popen(command)
        try:
            wait_healthy("127.0.0.1", health_port, timeout=20)
            process = psutil.Process(server.pid)
            body = b"x" * args.body_bytes
            cpu0 = process.cpu_times()
            send_s, start_sequence = _send(_connection_string(port), args.events, body)
            cpu1 = process.cpu_times()
            receive_s = _receive(_connection_string(port), args.events, start_sequence)
            cpu2 = process.cpu_times()
        finally:
            server.terminate()
            server.wait(15)

    events: int = args.events

    def per_event_us(a: Any, b: Any) -> float:
        return float(b.user + b.system - a.user - a.system) / events * 1e6

    print(f"events: {args.events} x {args.body_bytes} B, one partition, sync SDK clients")
    print(
        f"send:    {args.events / send_s:8.0f} events/s"
        f"  (emulator CPU {per_event_us(cpu0, cpu1):.1f} us/event)"
    )
    print(
        f"receive: {args.events / receive_s:8.0f} events/s"
        f"  (emulator CPU {per_event_us(cpu1, cpu2):.1f} us/event)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
