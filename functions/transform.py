"""The transform Blueprint: the Event Hub-triggered consumer, its timer, and its metrics.

It only translates: `func.EventHubEvent` → `transform.service.Delivery` (the Event Hubs
position for redelivery detection, `{partition, sequence_number, offset}` for dead letters),
then `TransformService` does the work on Table / Blob adapters built once per worker process.

Failure policy. The host checkpoints a batch after the invocation even when it raises, except
while a retry policy is still retrying. So:
- unparseable input becomes a dead letter inside the service, never an exception;
- a transient storage failure (or state that keeps changing under us) raises, and the retry
  policy below runs the batch again, nothing checkpointed; effects already made are
  recognised on the rerun (watermarks, ETags, deterministic dead-letter ids);
- on the last attempt the batch is applied delivery by delivery and whatever still fails is
  parked whole as a dead letter (`transient-failure-parked`, with its partition, sequence
  number and offset) before the function returns normally, so nothing is lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, List

import azure.functions as func
import orjson
from azure.data.tables import TableServiceClient

from adapters.azure_errors import CLIENT_OPTIONS
from adapters.blob_deadletters import BlobDeadLetterSink
from adapters.blob_records import BlobRecordSink
from adapters.credentials import blob_service, sync_credential
from adapters.entity import SPILL_CONTAINER, STATE_SHARDS
from adapters.opcount import (
    METRICS,
    CountedDeadLetters,
    OperationCounter,
    OperationCounts,
    operation_scope,
)
from adapters.table_state import TableStateStore
from functions import telemetry
from functions.settings import (
    SettingsError,
    StorageConnection,
    TransformSettings,
    number_setting,
)
from schemas.record import DeadLetter, DeadLetterSource
from schemas.timestamps import datetime_to_ms, iso_ms
from transform.deadletters import dead_letter_id, raw_text
from transform.errors import ConcurrencyConflict, StorageUnavailable
from transform.ports import DeadLetterSink, RecordSink, StateStore
from transform.service import Counts, Delivery, TransformService
from transform.state import DAY_MS, SourcePosition, Timing

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ untyped

DEFAULT_TIMER_SCHEDULE = "*/30 * * * * *"
# A `%SETTING%` the host cannot resolve stops the whole app from indexing, so the binding names
# TIMER_SCHEDULE only when it is set (app settings are environment variables at indexing).
TIMER_SCHEDULE = "%TIMER_SCHEDULE%" if os.environ.get("TIMER_SCHEDULE") else DEFAULT_TIMER_SCHEDULE
PARKED_REASON = "transient-failure-parked"
RETRY_COUNT = 8
"""Attempts after the first: 2, 4, 8, 16, 32, 60, 60, 60 s apart (about 4 min), then park."""
TRANSIENT = (StorageUnavailable, ConcurrencyConflict)
FAILURES_BEFORE_PARKING_ALL = 3
PARK_WRITE_ATTEMPTS = 5


class SystemClock:
    """Processing time from the machine's clock."""

    def now(self) -> datetime:
        """Aware UTC now."""
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Tuning:
    """The consumer's knobs beyond SPEC 8's settings (all optional app settings)."""

    cache_size: int = 20_000
    """STATE_CACHE_SIZE: conversations whose (state, ETag) a worker keeps in memory."""
    timer_batch: int = 500
    """TIMER_BATCH_SIZE: due conversations the timer takes per round."""
    timer_max_seconds: float = 240.0
    """TIMER_MAX_SECONDS: a timer run stops starting rounds after this long."""
    shards: int = STATE_SHARDS
    """STATE_SHARDS: shards of a new state table (an existing table keeps its own)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tuning:
        """Read from the environment, defaults for what is not set."""
        return cls(
            cache_size=int(number_setting(env, "STATE_CACHE_SIZE", 20_000, 0)),
            timer_batch=int(number_setting(env, "TIMER_BATCH_SIZE", 500, 1)),
            timer_max_seconds=number_setting(env, "TIMER_MAX_SECONDS", 240.0, 1),
            shards=int(number_setting(env, "STATE_SHARDS", STATE_SHARDS, 1)),
        )


@dataclass(slots=True)
class TransformMetrics:
    """In-process totals of what this worker's consumer and timer did (read by /metrics)."""

    batches: int = 0
    timer_runs: int = 0
    parked: int = 0
    counts: Counts = field(default_factory=Counts)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, counts: Counts, *, batch: bool, parked: int = 0) -> None:
        """Account for one batch or timer run."""
        with self.lock:
            self.counts.add(counts)
            self.parked += parked
            if batch:
                self.batches += 1
            else:
                self.timer_runs += 1

    def snapshot(self, ops: OperationCounts) -> dict[str, Any]:
        """Plain values, with storage requests per micro-event (SPEC 12 P2)."""
        with self.lock:
            counts = self.counts.as_dict()
            batches, timer_runs, parked = self.batches, self.timer_runs, self.parked
        micro_events = counts["micro_events"]
        return {
            "batches": batches,
            "timer_runs": timer_runs,
            "parked": parked,
            "counts": counts,
            "storage_operations": ops.as_dict(),
            "operations_per_micro_event": round(ops.total / micro_events, 4)
            if micro_events
            else None,
        }


TOTALS = TransformMetrics()


@dataclass(frozen=True, slots=True)
class TransformRuntime:
    """What one worker process keeps between invocations."""

    settings: TransformSettings
    tuning: Tuning
    service: TransformService
    store: StateStore
    records: RecordSink
    dead_letters: DeadLetterSink
    counter: OperationCounter


def table_service(connection: StorageConnection) -> TableServiceClient:
    """A Table service client from a connection string, or the table URI and an identity."""
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return TableServiceClient.from_connection_string(secret, **CLIENT_OPTIONS)
    if not connection.table_service_uri:
        raise SettingsError(
            "the storage connection has no table endpoint: set StateStorage__tableServiceUri "
            "to https://<account>.table.core.windows.net"
        )
    return TableServiceClient(
        endpoint=connection.table_service_uri, credential=sync_credential(), **CLIENT_OPTIONS
    )


def build_runtime(
    settings: TransformSettings, tuning: Tuning, counter: OperationCounter = METRICS
) -> TransformRuntime:
    """Wire the service to the Azure adapters (clients connect on first use)."""
    tables = table_service(settings.state)
    blobs, _ = blob_service(settings.state, **CLIENT_OPTIONS)
    store = TableStateStore(
        tables.get_table_client(settings.state_table),
        blobs.get_container_client(SPILL_CONTAINER),
        counter=counter,
        cache_size=tuning.cache_size,
        shards=tuning.shards,
    )
    records = BlobRecordSink(
        blobs.get_container_client(settings.records_container),
        counter=counter,
        cache_size=tuning.cache_size,
    )
    dead_letters = CountedDeadLetters(
        BlobDeadLetterSink(settings.state, settings.deadletter_container), counter
    )
    timing = Timing(
        grace_ms=round(settings.grace_seconds * 1000),
        idle_ms=round(settings.idle_timeout_seconds * 1000),
        retention_ms=round(settings.retention_days * DAY_MS),
    )
    service = TransformService(store, records, dead_letters, SystemClock(), timing)
    return TransformRuntime(settings, tuning, service, store, records, dead_letters, counter)


_runtime: TransformRuntime | None = None
_runtime_lock = threading.Lock()


def install_runtime(replacement: TransformRuntime | None) -> TransformRuntime | None:
    """Swap the process's runtime (tests, or a host that wires its own); returns the old one."""
    global _runtime
    with _runtime_lock:
        previous, _runtime = _runtime, replacement
    return previous


def runtime() -> TransformRuntime:
    """The worker's runtime, built from the app settings on first use."""
    global _runtime  # noqa: PLW0603 - one per worker process, by design
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                built = build_runtime(TransformSettings.from_env(), Tuning.from_env(os.environ))
                if isinstance(built.store, TableStateStore):
                    built.store.ensure_table()
                if isinstance(built.records, BlobRecordSink):
                    built.records.ensure_container()
                log.info(
                    "transform runtime ready table=%s records=%s storage=%s cache_size=%s",
                    built.settings.state_table,
                    built.settings.records_container,
                    built.settings.state.describe(),
                    built.tuning.cache_size,
                )
                telemetry.setup()
                _runtime = built
    return _runtime


# ---------------------------------------------------------------------- translation
def to_deliveries(events: Sequence[func.EventHubEvent]) -> list[Delivery]:
    """Trigger input → deliveries, with their Event Hubs positions."""
    if not events:
        return []
    metadata: Mapping[str, Any] = events[0].metadata or {}
    context = metadata.get("PartitionContext") or {}
    partition = str(context.get("PartitionId", "")) if isinstance(context, Mapping) else ""
    offsets = metadata.get("OffsetStringArray")
    deliveries: list[Delivery] = []
    for index, event in enumerate(events):
        sequence = event.sequence_number
        offset: str | None = None
        if isinstance(offsets, list) and index < len(offsets) and offsets[index] is not None:
            offset = str(offsets[index])
        elif event.offset is not None:
            offset = str(event.offset)
        enqueued = event.enqueued_time
        enqueued_ms = 0
        if enqueued is not None:
            # The host hands over a naive datetime that holds UTC.
            enqueued_ms = datetime_to_ms(
                enqueued if enqueued.tzinfo else enqueued.replace(tzinfo=UTC)
            )
        position = (
            SourcePosition(partition, int(sequence), enqueued_ms)
            if sequence is not None and partition
            else None
        )
        source = {"partition": partition or None, "sequence_number": sequence, "offset": offset}
        deliveries.append(Delivery(event.get_body(), position, source))
    return deliveries


# ---------------------------------------------------------------------- the consumer
@bp.function_name("transform")
@bp.retry(
    strategy="exponential_backoff",
    max_retry_count=str(RETRY_COUNT),
    minimum_interval="00:00:02",
    maximum_interval="00:01:00",
)
@bp.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%EVENTHUB_NAME%",
    connection="EventHubConnection",
    consumer_group="%EVENTHUB_CONSUMER_GROUP%",
    cardinality="many",
    data_type="binary",
)
# typing.List, not list: Microsoft's worker refuses the built-in generic as an "invalid non-type
# annotation" when it loads the app, and then runs none of its functions (ruff's UP006 is off
# for functions/ so that pyupgrade cannot rewrite it; tests/functions/test_worker_load.py guards).
def transform(events: List[func.EventHubEvent], context: func.Context) -> None:
    """Apply one Event Hubs batch."""
    retry = context.retry_context
    attempt = retry.retry_count if retry is not None else 0
    last = retry is None or retry.max_retry_count <= 0 or attempt >= retry.max_retry_count
    deliveries = to_deliveries(events)
    try:
        rt = runtime()
    except (SettingsError, ValueError) as e:
        # Without settings there is nowhere to park either: say loudly what is lost.
        log.critical(
            "transform is not configured, batch not applied %s error=%s", _where(deliveries), e
        )
        raise
    consume(rt, deliveries, attempt=attempt, last_attempt=last)


def consume(
    rt: TransformRuntime, deliveries: Sequence[Delivery], *, attempt: int, last_attempt: bool
) -> Counts:
    """Process a batch; on the last attempt park what cannot be applied instead of raising."""
    where = _where(deliveries)
    started = time.monotonic()
    parked = 0
    with operation_scope() as ops:
        try:
            counts = rt.service.process(deliveries)
        except Exception as e:  # transient storage trouble, or a defect some input triggers
            if not isinstance(e, TRANSIENT):
                log.exception("transform batch raised a non-transient error %s", where)
            if not last_attempt:
                # The requests of a failed attempt were made all the same: count them.
                log.warning(
                    "transform batch failed, will retry %s attempt=%s error=%s %s",
                    where,
                    attempt,
                    e,
                    ops.as_log(),
                )
                raise
            log.error(
                "transform batch failed on its last attempt %s error=%s: applying one by one",
                where,
                e,
            )
            counts, parked = _apply_or_park(rt, deliveries, e)
    TOTALS.add(counts, batch=True, parked=parked)
    telemetry.observe(telemetry.TRANSFORM_BATCH_MS, (time.monotonic() - started) * 1000)
    log.info(
        "transform batch %s attempt=%s parked=%s ms=%d %s %s",
        where,
        attempt,
        parked,
        (time.monotonic() - started) * 1000,
        _kv(counts),
        ops.as_log(),
    )
    return counts


def _apply_or_park(
    rt: TransformRuntime, deliveries: Sequence[Delivery], first_error: Exception
) -> tuple[Counts, int]:
    """Apply each delivery on its own; park the ones that fail, and the rest once it is hopeless."""
    counts = Counts()
    parked = 0
    failures = 0
    error: Exception = first_error
    for delivery in deliveries:
        if failures < FAILURES_BEFORE_PARKING_ALL:
            try:
                counts.add(rt.service.process([delivery]))
                failures = 0
                continue
            except Exception as e:  # the host checkpoints past whatever is not parked here
                failures += 1
                error = e
        _park(rt.dead_letters, delivery, error)
        counts.deliveries += 1
        counts.dead_letters += 1
        parked += 1
    return counts, parked


def _park(dead_letters: DeadLetterSink, delivery: Delivery, error: Exception) -> None:
    """Keep a delivery whole as a dead letter; raises only if even that keeps failing."""
    text, encoding = raw_text(delivery.body)
    letter = DeadLetter(
        id=dead_letter_id(f"transform-{PARKED_REASON}", delivery.source, None),
        stage="transform",
        reason=PARKED_REASON,
        error=f"{type(error).__name__}: {str(error)[:500]}",
        received_at=iso_ms(datetime_to_ms(datetime.now(UTC))),
        source=DeadLetterSource.model_validate(delivery.source),
        raw=text,
        raw_encoding=encoding,
    )
    for attempt in range(PARK_WRITE_ATTEMPTS):
        try:
            dead_letters.write(letter)
            break
        except StorageUnavailable as e:
            if attempt == PARK_WRITE_ATTEMPTS - 1:
                # Nowhere left to put it: the positions let an operator replay from the hub.
                log.critical(
                    "parking failed, delivery lost to the pipeline partition=%s sequence=%s "
                    "offset=%s error=%s",
                    delivery.source.get("partition"),
                    delivery.source.get("sequence_number"),
                    delivery.source.get("offset"),
                    e,
                )
                raise
            time.sleep(2**attempt)
    log.warning(
        "dead letter stage=transform reason=%s partition=%s sequence=%s offset=%s error=%s",
        PARKED_REASON,
        delivery.source.get("partition"),
        delivery.source.get("sequence_number"),
        delivery.source.get("offset"),
        letter.error[:200],
    )


def _where(deliveries: Sequence[Delivery]) -> str:
    if not deliveries:
        return "partition=- events=0"
    first, last = deliveries[0].source, deliveries[-1].source
    return (
        f"partition={first.get('partition')} first_sequence={first.get('sequence_number')} "
        f"last_sequence={last.get('sequence_number')} events={len(deliveries)}"
    )


def _kv(counts: Counts) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.as_dict().items())


# ---------------------------------------------------------------------- the timer
@bp.function_name("transform_timer")
@bp.timer_trigger(arg_name="timer", schedule=TIMER_SCHEDULE, use_monitor=False)
def transform_timer(timer: func.TimerRequest) -> None:
    """Finalize, expire, retry owed writes and purge, until nothing is due (bounded)."""
    if timer.past_due:
        log.info("transform timer is past due")
    run_timer(runtime(), time.monotonic)


def run_timer(rt: TransformRuntime, monotonic: Callable[[], float]) -> Counts:
    """Tick in rounds of `timer_batch` until a round comes back short or time is up."""
    started = monotonic()
    total = Counts()
    rounds = 0
    with operation_scope() as ops:
        while True:
            step = rt.service.tick(limit=rt.tuning.timer_batch)
            total.add(step)
            rounds += 1
            if step.due < rt.tuning.timer_batch:
                break
            if monotonic() - started > rt.tuning.timer_max_seconds:
                log.warning("transform timer stopped early rounds=%s: more is due", rounds)
                break
    TOTALS.add(total, batch=False)
    telemetry.observe(telemetry.TRANSFORM_TIMER_MS, (monotonic() - started) * 1000)
    log.info(
        "transform timer rounds=%s ms=%d %s %s",
        rounds,
        (monotonic() - started) * 1000,
        _kv(total),
        ops.as_log(),
    )
    return total


# ---------------------------------------------------------------------- metrics
@bp.function_name("transform_metrics")
@bp.route(route="transform/metrics", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def transform_metrics(req: func.HttpRequest) -> func.HttpResponse:
    """This worker's totals: counts, storage requests, requests per micro-event."""
    body = orjson.dumps(TOTALS.snapshot(METRICS.total()))
    return func.HttpResponse(body, status_code=200, mimetype="application/json")
