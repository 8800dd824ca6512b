"""The transform Blueprint: the Event Hub-triggered consumer, its timer, and its metrics.

It only translates: `func.EventHubEvent` → `transform.service.Delivery` (the Event Hubs
position for redelivery detection, `{partition, sequence_number, offset}` for dead letters),
then the batch service does the work, the failure policy included (`process_batch`: raise while
the retry policy below still retries, park what cannot be applied on the last attempt), on the
Table / Blob adapters wired once per worker process (`adapters.wiring.transform_runtime`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any, List

import azure.functions as func
import orjson

from adapters.deadletter_store import PurgeOutcome
from adapters.errors import Unreachable
from adapters.opcount import METRICS, operation_scope
from adapters.settings import SettingsError, TransformSettings, Tuning
from adapters.wiring import TransformRuntime, transform_runtime
from functions import telemetry
from functions.totals import TOTALS
from schemas.timestamps import datetime_to_ms
from transform.errors import StorageUnavailable
from transform.service import Counts, Delivery, where
from transform.state import SourcePosition

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ untyped

DEFAULT_TIMER_SCHEDULE = "*/30 * * * * *"
# A `%SETTING%` the host cannot resolve stops the whole app from indexing, so the binding names
# TIMER_SCHEDULE only when it is set (app settings are environment variables at indexing).
TIMER_SCHEDULE = "%TIMER_SCHEDULE%" if os.environ.get("TIMER_SCHEDULE") else DEFAULT_TIMER_SCHEDULE
RETRY_COUNT = 8
"""Attempts after the first: 2, 4, 8, 16, 32, 60, 60, 60 s apart (about 4 min), then park."""

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
                built = transform_runtime(TransformSettings.from_env(), Tuning.from_env())
                built.prepare()
                log.info(
                    "transform runtime ready table=%s records=%s storage=%s cache_size=%s "
                    "record_pii=%s deadletter_purge=%s "
                    "media_types=%s",
                    built.settings.state_table,
                    built.settings.records_container,
                    built.settings.state.describe(),
                    built.tuning.cache_size,
                    built.settings.pii.mode,
                    "timer" if built.deadletter_purge else "off",
                    built.settings.media.describe(),
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
            "transform is not configured, batch not applied %s error=%s", where(deliveries), e
        )
        raise
    consume(rt, deliveries, attempt=attempt, last_attempt=last)


def consume(
    rt: TransformRuntime, deliveries: Sequence[Delivery], *, attempt: int, last_attempt: bool
) -> Counts:
    """Process a batch; on the last attempt the service parks what it cannot apply."""
    started = time.monotonic()
    with operation_scope() as ops:
        try:
            outcome = rt.service.process_batch(deliveries, last_attempt=last_attempt)
        except Exception as e:
            # The requests of a failed attempt were made all the same: count them.
            log.warning(
                "transform batch failed, will retry %s attempt=%s error=%s %s",
                where(deliveries),
                attempt,
                e,
                ops.as_log(),
            )
            raise
    TOTALS.add(outcome.counts, batch=True, parked=outcome.parked)
    telemetry.observe(telemetry.TRANSFORM_BATCH_MS, (time.monotonic() - started) * 1000)
    log.info(
        "transform batch %s attempt=%s parked=%s ms=%d %s %s",
        where(deliveries),
        attempt,
        outcome.parked,
        (time.monotonic() - started) * 1000,
        _kv(outcome.counts),
        ops.as_log(),
    )
    return outcome.counts


def _kv(counts: Counts) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.as_dict().items())


# ---------------------------------------------------------------------- the timer
@bp.function_name("transform_timer")
@bp.timer_trigger(arg_name="timer", schedule=TIMER_SCHEDULE, use_monitor=False)
def transform_timer(timer: func.TimerRequest) -> None:
    """Finalize, expire, retry owed writes and purge, until nothing is due (bounded); on the
    local stack, also delete dead letters past their retention."""
    if timer.past_due:
        log.info("transform timer is past due")
    rt = runtime()
    run_timer(rt, time.monotonic)
    purge_dead_letters(rt)


def run_timer(rt: TransformRuntime, monotonic: Callable[[], float]) -> Counts:
    """Tick in rounds of `timer_batch` until a round comes back short or time is up."""
    started = monotonic()
    with operation_scope() as ops:
        outcome = rt.service.run_timer(
            rt.tuning.timer_batch, rt.tuning.timer_max_seconds, monotonic
        )
    TOTALS.add(outcome.counts, batch=False)
    telemetry.observe(telemetry.TRANSFORM_TIMER_MS, (monotonic() - started) * 1000)
    log.info(
        "transform timer rounds=%s ms=%d %s %s",
        outcome.rounds,
        (monotonic() - started) * 1000,
        _kv(outcome.counts),
        ops.as_log(),
    )
    return outcome.counts


def purge_dead_letters(rt: TransformRuntime) -> PurgeOutcome | None:
    """`DEADLETTER_PURGE=timer`: dead letters older than `DEADLETTER_RETENTION_DAYS` go, the
    container listed at most once an hour (Azure: off, the lifecycle rule does it)."""
    if rt.deadletter_purge is None:
        return None
    try:
        return rt.deadletter_purge.run(rt.clock.now())
    except (Unreachable, StorageUnavailable) as e:
        # The timer's own work is done; the purge tries again after its interval.
        log.warning("dead-letter purge failed error=%s", e)
        return None


# ---------------------------------------------------------------------- metrics
@bp.function_name("transform_metrics")
@bp.route(route="transform/metrics", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def transform_metrics(req: func.HttpRequest) -> func.HttpResponse:
    """This worker's totals: counts, storage requests, requests per micro-event."""
    body = orjson.dumps(TOTALS.snapshot(METRICS.total()))
    return func.HttpResponse(body, status_code=200, mimetype="application/json")
