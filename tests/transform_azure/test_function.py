"""The transform Blueprint as the worker calls it: translation, retry policy, parking, timer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import orjson
import pytest
from azure.functions import _abc as func_abc
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from adapters.opcount import OperationCounter
from adapters.settings import TransformSettings, Tuning
from adapters.wiring import TransformRuntime
from functions import transform as blueprint
from functions.transform import (
    RETRY_COUNT,
    install_runtime,
    run_timer,
    to_deliveries,
)
from tests.conftest import project_functions
from tests.contract.states import envelope
from transform.errors import StorageUnavailable
from transform.service import PARKED_REASON, TransformService
from transform.state import SourcePosition, Timing

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def event_batch(bodies: list[bytes], partition: str = "3", first_sequence: int = 10) -> Any:
    """`list[func.EventHubEvent]` decoded from host binding data, as the worker does it."""
    sequences = [first_sequence + n for n in range(len(bodies))]
    enqueued = [(T0 + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S") for n in sequences]
    system = [
        {"SequenceNumber": s, "Offset": s * 64, "EnqueuedTimeUtc": e, "PartitionKey": "k"}
        for s, e in zip(sequences, enqueued, strict=True)
    ]
    context = {"PartitionId": partition, "EventHubName": "genesys-events", "ConsumerGroup": "$D"}

    def datum(value: Any) -> meta.Datum:
        return meta.Datum(json.dumps(value), "json")

    class Collection:
        def __init__(self) -> None:
            self.bytes = bodies
            self.string: list[str] = []

    metadata = {
        "PartitionContext": datum(context),
        "SequenceNumberArray": datum(sequences),
        "OffsetStringArray": datum([str(s * 64) for s in sequences]),
        "EnqueuedTimeUtcArray": datum(enqueued),
        "SystemPropertiesArray": datum(system),
    }
    data = meta.Datum(Collection(), "collection_bytes")
    return EventHubTriggerConverter.decode(data, trigger_metadata=metadata)


class Retry(func_abc.RetryContext):
    def __init__(self, count: int, maximum: int = RETRY_COUNT) -> None:
        self._count, self._maximum = count, maximum

    @property
    def retry_count(self) -> int:
        return self._count

    @property
    def max_retry_count(self) -> int:
        return self._maximum

    @property
    def exception(self) -> func_abc.RpcException:
        raise NotImplementedError


class Context:
    def __init__(self, retry: int) -> None:
        self.retry_context = Retry(retry)


class Twins:
    """A runtime over the in-memory twins, installed as the worker's."""

    def __init__(self) -> None:
        self.store = InMemoryStateStore()
        self.records = InMemoryRecordSink()
        self.letters = InMemoryDeadLetterSink()
        self.clock = ManualClock(T0)
        self.service = TransformService(
            self.store, self.records, self.letters, self.clock, Timing(grace_ms=1000)
        )
        self.runtime = TransformRuntime(
            settings=TransformSettings.from_env({"StateStorage": "UseDevelopmentStorage=true"}),
            tuning=Tuning(timer_batch=7),
            service=self.service,
            store=self.store,
            records=self.records,
            dead_letters=self.letters,
            counter=OperationCounter(),
        )


@pytest.fixture
def twins() -> Iterator[Twins]:
    twins = Twins()
    previous = install_runtime(twins.runtime)
    yield twins
    install_runtime(previous)


def call(date: str, details: list[dict[str, object]], conversation: str = "c-1") -> bytes:
    return envelope(conversation, T0_MS + int(date), details)


def test_events_become_deliveries_with_their_event_hubs_position() -> None:
    deliveries = to_deliveries(event_batch([b"a", b"b"], partition="3", first_sequence=10))
    assert [d.body for d in deliveries] == [b"a", b"b"]
    assert deliveries[0].position == SourcePosition("3", 10, T0_MS + 10_000)
    assert deliveries[1].source == {"partition": "3", "sequence_number": 11, "offset": "704"}


def test_the_app_registers_the_consumer_timer_and_metrics() -> None:
    names = {f.get_function_name(): f for f in project_functions()}
    assert {"transform", "transform_timer", "transform_metrics"} <= names.keys()
    consumer = json.loads(names["transform"].get_function_json())["bindings"][0]
    assert (consumer["cardinality"], consumer["dataType"]) == ("MANY", "BINARY")
    retry = names["transform"].get_settings_dict("retry_policy")
    assert retry is not None
    assert (retry["strategy"], retry["max_retry_count"]) == (
        "exponential_backoff",
        str(RETRY_COUNT),
    )


def test_a_batch_is_applied_and_a_redelivery_changes_nothing(twins: Twins) -> None:
    bodies = [
        call("0", [{"name": "conversation:state", "data": {"status": "connected"}}]),
        call("9000", [{"name": "conversation:state", "data": {"status": "disconnected"}}]),
        b"{not json",
    ]
    events = event_batch(bodies)
    blueprint.transform(events, Context(0))
    state, _ = twins.store.load("c-1") or pytest.fail("no state")
    assert len(state.events) == 2
    (letter,) = twins.letters.letters.values()
    assert letter.source.sequence_number == 12
    blueprint.transform(events, Context(0))
    again, _ = twins.store.load("c-1") or pytest.fail("no state")
    assert (again.duplicate_count, len(twins.letters.letters)) == (0, 1)


def test_transient_failures_raise_until_the_last_attempt_then_park(twins: Twins) -> None:
    body = call("0", [{"name": "conversation:state", "data": {"status": "connected"}}])
    events = event_batch([body], first_sequence=40)
    down = StorageUnavailable("table down")
    twins.store.fail_next = [down] * 50
    with pytest.raises(StorageUnavailable):
        blueprint.transform(events, Context(0))
    blueprint.transform(events, Context(RETRY_COUNT))
    (letter,) = twins.letters.letters.values()
    assert (letter.reason, letter.source.sequence_number, letter.raw) == (
        PARKED_REASON,
        40,
        body.decode(),
    )
    assert letter.error.startswith("StorageUnavailable")


def test_a_defect_on_the_last_attempt_parks_the_batch_instead_of_losing_it(
    twins: Twins,
) -> None:
    body = call("0", [{"name": "conversation:state", "data": {"status": "connected"}}])
    events = event_batch([body], first_sequence=60)
    twins.store.fail_next = [RuntimeError("a bug some input triggers")] * 50
    with pytest.raises(RuntimeError):
        blueprint.transform(events, Context(0))
    blueprint.transform(events, Context(RETRY_COUNT))
    (letter,) = twins.letters.letters.values()
    assert (letter.reason, letter.source.sequence_number) == (PARKED_REASON, 60)
    assert letter.error.startswith("RuntimeError")


def test_the_timer_drains_in_rounds(twins: Twins) -> None:
    bodies = [
        call("0", [{"name": "conversation:state", "data": {"status": "disconnected"}}], f"t-{n}")
        for n in range(20)
    ]
    blueprint.transform(event_batch(bodies), Context(0))
    twins.clock.set(T0 + timedelta(seconds=5))
    counts = run_timer(twins.runtime, iter(range(100)).__next__)
    assert counts.finalized == 20
    assert len(twins.records.records) == 20


def test_metrics_report_requests_per_micro_event(twins: Twins) -> None:
    body = call("0", [{"name": "conversation:state", "data": {"status": "connected"}}])
    blueprint.transform(event_batch([body], first_sequence=90), Context(0))
    response = blueprint.transform_metrics(
        func.HttpRequest("GET", "/api/transform/metrics", body=b"")
    )
    document = orjson.loads(response.get_body())
    assert document["batches"] >= 1
    assert document["counts"]["micro_events"] >= 1
    assert "operations_per_micro_event" in document
