"""Storage requests per micro-event (SPEC 12 P2) with the real adapters on Azurite.

A realistic stream (tests/transform_azure/realistic.py) is sent at a steady rate through four
Event Hubs partitions, consumed in batches of at most 100 collected every second, with the
timer every 30 s; every Table and Blob request the consumer and the timer make is counted.
The figure printed here is the one BENCHMARKS reports (`-s` to see it).
"""

from __future__ import annotations

import pytest

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from adapters.opcount import OperationCounter, OperationCounts
from schemas.timestamps import ms_to_datetime
from tests.transform_azure import harness
from tests.transform_azure.conftest import AzureStorage
from tests.transform_azure.realistic import generate
from transform.service import TransformService

P2_TARGET = 0.25


def report(label: str, ops: OperationCounts, micro_events: int, result: harness.RunResult) -> str:
    per = ops.total / micro_events
    return (
        f"{label}: {per:.3f} requests/micro-event ({ops.total} requests, {micro_events} "
        f"micro-events, {result.batches} batches, {result.ticks} timer runs) {ops.as_dict()}"
    )


@pytest.mark.stack
def test_requests_per_micro_event_on_azurite(azure_storage: AzureStorage) -> None:
    sent = generate(300, seed=5)
    counter = OperationCounter()
    store = azure_storage.new_store(counter)
    records = azure_storage.new_records(counter)
    clock = ManualClock(ms_to_datetime(sent[0].at_ms))
    service = TransformService(store, records, InMemoryDeadLetterSink(), clock)
    hub = harness.Hub.route(sent, partitions=4, rate_per_s=200, start_ms=sent[0].at_ms)
    before = counter.total()
    result = harness.run(service, clock, hub, batch_size=100, poll_ms=1000)
    ops = counter.total()
    assert before.total <= 2  # creating the table and container
    print("\n" + report("azurite realistic x300 @200/s", ops, result.counts.micro_events, result))
    assert len(azure_storage.records()) == result.counts.finalized
    assert ops.total / result.counts.micro_events <= P2_TARGET


@pytest.mark.parametrize(("rate", "ceiling"), [(50, 0.2), (200, 0.13), (1000, 0.12)])
def test_requests_per_micro_event_with_the_twins(rate: int, ceiling: float) -> None:
    """The twins count requests exactly as the adapters do (blob writes: one per record)."""
    sent = generate(2000, seed=3)
    counter = OperationCounter()
    store = InMemoryStateStore(counter=counter, presume_new=True, cache_size=20_000)
    records = InMemoryRecordSink()
    clock = ManualClock(ms_to_datetime(sent[0].at_ms))
    service = TransformService(store, records, InMemoryDeadLetterSink(), clock)
    hub = harness.Hub.route(sent, partitions=4, rate_per_s=rate, start_ms=sent[0].at_ms)
    result = harness.run(service, clock, hub, batch_size=100, poll_ms=1000)
    ops = counter.total()
    ops.blob_writes += records.writes  # a first revision is one conditional PUT
    print(
        "\n" + report(f"twins realistic x2000 @{rate}/s", ops, result.counts.micro_events, result)
    )
    assert ops.total / result.counts.micro_events <= ceiling
