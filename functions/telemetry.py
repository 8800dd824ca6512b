"""Metrics to Application Insights through OpenTelemetry: a thin bridge the blueprints call.

Nothing new is counted on the hot paths. The figures the app already keeps are read when the
exporter collects (once a minute): ingest's `ingest.metrics.REGISTRY`, the transform's
`functions.totals.TOTALS` (its `Counts`), and the adapters' storage requests
(`adapters.opcount.METRICS`). The blueprints add only latencies (`observe`), and a timer here
probes what no invocation sees: consumer lag per partition and open conversations.

Exporter: Azure Monitor when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set (Entra auth from
`APPLICATIONINSIGHTS_AUTHENTICATION_STRING`, read by the exporter), the console when
`TELEMETRY_CONSOLE` is true, else none: then `setup` returns False and `observe` returns at once.

Latency histograms go out as gauges of the last interval's p50 / p99 / mean (attribute `stat`),
because Application Insights keeps only count, sum, min and max of a histogram.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from adapters import lag as lag_module
from adapters.checkpoints import CheckpointStore
from adapters.opcount import METRICS, OperationCounter, OperationCounts
from adapters.settings import (
    HubSettings,
    StorageConnection,
    TransformSettings,
    number_setting,
)
from adapters.state_reader import StateReader
from adapters.wiring import checkpoint_store, hub_address, hub_reader, state_reader
from functions.totals import TOTALS
from ingest import metrics as ingest_metrics
from ingest.metrics import LATENCY_BUCKETS_MS, Histogram, MetricsRegistry
from schemas.timestamps import datetime_to_ms
from transform.service import Counts

if TYPE_CHECKING:  # OpenTelemetry costs ~0.2 s to import: only a configured worker loads it
    from opentelemetry.metrics import CallbackOptions, Meter, Observation
    from opentelemetry.sdk.metrics import MeterProvider

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ untyped

METER_NAME = "genesys_pipeline"
DEFAULT_INTERVAL_SECONDS = 60.0
DEFAULT_PROBE_SCHEDULE = "0 */1 * * * *"
PROBE_SCHEDULE = (
    "%TELEMETRY_PROBE_SCHEDULE%"
    if os.environ.get("TELEMETRY_PROBE_SCHEDULE")
    else DEFAULT_PROBE_SCHEDULE
)
OPEN_CONVERSATIONS_LIMIT = 50_000
"""The probe counts at most this many open conversations (one due-index query per shard)."""

CONSUMER_LAG_TOTAL = "consumer_lag_events_total"
"""The metric infra/modules/alerts.bicep alerts on."""
TRANSFORM_BATCH_MS = "transform_batch_latency_ms"
TRANSFORM_TIMER_MS = "transform_timer_latency_ms"
INGEST_COUNTERS = (
    ingest_metrics.REQUESTS,
    ingest_metrics.PAYLOADS_ACCEPTED,
    ingest_metrics.PAYLOADS_PARTIAL,
    ingest_metrics.PAYLOADS_REJECTED,
    ingest_metrics.HEARTBEATS,
    ingest_metrics.EVENTS_SENT,
    ingest_metrics.SEND_FAILURES,
)
INGEST_LATENCIES = (ingest_metrics.SEND_LATENCY_MS, ingest_metrics.REQUEST_LATENCY_MS)
STORAGE_REQUEST_KINDS = (
    "table_reads",
    "table_queries",
    "table_writes",
    "blob_reads",
    "blob_writes",
)


def exporter_kind(env: Mapping[str, str]) -> str | None:
    """`azure-monitor`, `console`, or None (no telemetry)."""
    if (env.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or "").strip():
        return "azure-monitor"
    if (env.get("TELEMETRY_CONSOLE") or "").strip().lower() in ("1", "true", "yes", "on"):
        return "console"
    return None


@dataclass(slots=True)
class Sources:
    """Where the figures are read from (the process-wide objects; tests pass their own)."""

    ingest: MetricsRegistry = ingest_metrics.REGISTRY
    storage: OperationCounter = METRICS
    transform: Callable[[], tuple[Counts, dict[str, int]]] | None = None
    """Counts plus batches / timer runs / parked; default: `functions.totals.TOTALS`."""


@dataclass(slots=True)
class _Window:
    """The cumulative histogram at the previous collection, to report only what is new."""

    buckets: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0


class Telemetry:
    """Instruments over the sources, plus the few values only the app can set."""

    def __init__(self, provider: MeterProvider, sources: Sources) -> None:
        from opentelemetry.metrics import Observation

        self._observation = Observation
        self.provider = provider
        self._sources = sources
        self._lock = threading.Lock()
        self._latencies = MetricsRegistry()
        self._windows: dict[tuple[str, tuple[tuple[str, str], ...]], _Window] = {}
        self._lag: dict[str, int] = {}
        self._open: int | None = None
        meter = provider.get_meter(METER_NAME)
        self._instruments(meter)

    # -------------------------------------------------------------- what the app reports
    def observe(self, name: str, value_ms: float, **labels: str) -> None:
        """A latency of the transform (batch or timer run)."""
        self._latencies.observe(name, value_ms, LATENCY_BUCKETS_MS, **labels)

    def set_lag(self, lag: Mapping[str, int]) -> None:
        """Consumer lag by partition, from the probe."""
        with self._lock:
            self._lag = dict(lag)

    def set_open_conversations(self, count: int) -> None:
        """Conversations not finalized yet, from the probe."""
        with self._lock:
            self._open = count

    # -------------------------------------------------------------- instruments
    def _instruments(self, meter: Meter) -> None:
        for name in INGEST_COUNTERS:
            meter.create_observable_counter(name, [self._counter(name)], unit="1")
        for name in (*INGEST_LATENCIES, TRANSFORM_BATCH_MS, TRANSFORM_TIMER_MS):
            meter.create_observable_gauge(name, [self._latency(name)], unit="ms")
        for counts_field in (f.name for f in fields(Counts)):
            meter.create_observable_counter(
                f"transform_{counts_field}", [self._transform(counts_field)], unit="1"
            )
        for extra in ("batches", "timer_runs", "parked"):
            meter.create_observable_counter(f"transform_{extra}", [self._transform(extra)])
        meter.create_observable_counter(
            "storage_operations", [self._storage], unit="1", description="storage requests"
        )
        meter.create_observable_gauge("consumer_lag_events", [self._lag_by_partition])
        meter.create_observable_gauge(CONSUMER_LAG_TOTAL, [self._lag_total])
        meter.create_observable_gauge("open_conversations", [self._open_conversations])

    def _counter(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def read(_: CallbackOptions) -> Iterable[Observation]:
            for series in self._sources.ingest.snapshot().get(name, []):
                if "value" in series:
                    yield self._observation(series["value"], series["labels"])

        return read

    def _latency(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        registry = self._sources.ingest if name in INGEST_LATENCIES else self._latencies

        def read(_: CallbackOptions) -> Iterable[Observation]:
            for series in registry.snapshot().get(name, []):
                if "histogram" not in series:
                    continue
                labels: dict[str, str] = series["labels"]
                histogram = registry.histogram(name, **labels)
                if histogram is None:
                    continue
                yield from self._interval(name, labels, histogram)

        return read

    def _interval(
        self, name: str, labels: dict[str, str], histogram: Histogram
    ) -> Iterable[Observation]:
        """p50 / p99 / mean of what was observed since the previous collection."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            previous = self._windows.get(key) or _Window([0] * len(histogram.buckets))
            now = _Window(list(histogram.buckets), histogram.count, histogram.total)
            self._windows[key] = now
        count = now.count - previous.count
        if count <= 0:
            return
        delta = Histogram(histogram.bounds)
        delta.buckets = [a - b for a, b in zip(now.buckets, previous.buckets, strict=True)]
        delta.count, delta.total, delta.maximum = (
            count,
            now.total - previous.total,
            histogram.maximum,
        )
        for stat, value in (
            ("p50", delta.quantile(0.5)),
            ("p99", delta.quantile(0.99)),
            ("mean", delta.total / count),
        ):
            if value is not None:
                yield self._observation(value, {**labels, "stat": stat})

    def _transform_totals(self) -> tuple[Counts, dict[str, int]]:
        if self._sources.transform is not None:
            return self._sources.transform()
        return TOTALS.read()

    def _transform(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def read(_: CallbackOptions) -> Iterable[Observation]:
            counts, extra = self._transform_totals()
            value = extra[name] if name in extra else getattr(counts, name)
            yield self._observation(value)

        return read

    def _storage(self, _: CallbackOptions) -> Iterable[Observation]:
        totals: OperationCounts = self._sources.storage.total()
        for kind in STORAGE_REQUEST_KINDS:
            yield self._observation(getattr(totals, kind), {"kind": kind})

    def _lag_by_partition(self, _: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            lag = dict(self._lag)
        for partition, value in sorted(lag.items()):
            yield self._observation(value, {"partition": partition})

    def _lag_total(self, _: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            lag = dict(self._lag)
        if lag:
            yield self._observation(sum(lag.values()))

    def _open_conversations(self, _: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            value = self._open
        if value is not None:
            yield self._observation(value)


_active: Telemetry | None = None
_setup_lock = threading.Lock()
_setup_done = False


def install(provider: MeterProvider, sources: Sources | None = None) -> Telemetry:
    """Make `provider` the process's telemetry (tests pass one with an in-memory reader)."""
    global _active, _setup_done  # noqa: PLW0603 - one per worker process, by design
    with _setup_lock:
        _active = Telemetry(provider, sources or Sources())
        _setup_done = True
        return _active


def uninstall() -> None:
    """Stop exporting (tests; a worker keeps its telemetry for life)."""
    global _active, _setup_done
    with _setup_lock:
        if _active is not None:
            _active.provider.shutdown()
        _active, _setup_done = None, False


def active() -> Telemetry | None:
    """The process's telemetry, if configured."""
    return _active


def setup(env: Mapping[str, str] | None = None) -> bool:
    """Configure the exporter once per process from the app settings; False: none configured."""
    global _setup_done  # noqa: PLW0603
    env = os.environ if env is None else env
    with _setup_lock:
        if _setup_done:
            return _active is not None
        _setup_done = True
    kind = exporter_kind(env)
    if kind is None:
        log.info("telemetry off: APPLICATIONINSIGHTS_CONNECTION_STRING is not set")
        return False
    try:
        interval = number_setting(
            env, "TELEMETRY_EXPORT_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS, minimum=1
        )
        provider = _provider(kind, interval)
    except Exception as e:  # telemetry must never stop the pipeline
        log.error("telemetry not started exporter=%s error=%r", kind, e)
        return False
    install(provider)
    log.info("telemetry on exporter=%s interval_s=%s", kind, interval)
    return True


def _provider(kind: str, interval_s: float) -> MeterProvider:
    # Imported here: only a configured worker pays for the exporter (about 0.1 s at start).
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource

    exporter: MetricExporter
    if kind == "azure-monitor":
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter

        exporter = AzureMonitorMetricExporter()  # reads the connection and auth settings
    else:
        exporter = ConsoleMetricExporter()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_s * 1000)
    name = os.environ.get("WEBSITE_SITE_NAME") or "genesys-pipeline"
    return MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": name}))


def observe(name: str, value_ms: float, **labels: str) -> None:
    """Record a latency; nothing at all when telemetry is off."""
    telemetry = _active
    if telemetry is not None:
        telemetry.observe(name, value_ms, **labels)


# ---------------------------------------------------------------------- the probe
@dataclass(frozen=True, slots=True)
class Probed:
    """What one probe measured."""

    lag: dict[str, int]
    open_conversations: int | None


def probe(env: Mapping[str, str], telemetry: Telemetry, now: datetime | None = None) -> Probed:
    """Measure lag per partition and open conversations, and hand them to `telemetry`."""
    hub = HubSettings.from_env(env)
    checkpoints = _probe_checkpoints.get(hub.host_storage)
    if checkpoints is None:  # once per process: a client (and credential) per minute would pile up
        checkpoints = _probe_checkpoints[hub.host_storage] = checkpoint_store(hub)
    rows = lag_module.measure(hub_reader(hub), checkpoints, hub_address(hub))
    lag = {row.partition: row.lag for row in rows}
    telemetry.set_lag(lag)
    open_count = _open_conversations(env, now or datetime.now(UTC))
    if open_count is not None:
        telemetry.set_open_conversations(open_count)
    return Probed(lag, open_count)


_probe_checkpoints: dict[StorageConnection, CheckpointStore] = {}
_probe_readers: dict[tuple[StorageConnection, str], StateReader] = {}


def _open_conversations(env: Mapping[str, str], now: datetime) -> int | None:
    """Conversations whose next deadline is within the idle window: not finalized yet.

    The reader counts into its own counter: the probe is no part of the consumer's figures.
    """
    settings = TransformSettings.from_env(env)
    key = (settings.state, settings.state_table)
    reader = _probe_readers.get(key)
    if reader is None:
        reader = _probe_readers[key] = state_reader(settings)
    horizon = datetime_to_ms(now) + settings.timing.idle_ms
    return reader.open_conversations(horizon, OPEN_CONVERSATIONS_LIMIT)


@bp.function_name("telemetry_probe")
@bp.timer_trigger(arg_name="timer", schedule=PROBE_SCHEDULE, use_monitor=False)
def telemetry_probe(timer: func.TimerRequest) -> None:
    """Every minute: consumer lag and open conversations, when telemetry is on."""
    if not setup():
        return  # nothing to export them to: spare the reads
    telemetry = _active
    assert telemetry is not None
    started = time.monotonic()
    try:
        probed = probe(os.environ, telemetry)
    except Exception as e:  # a probe failure is logged; the next minute tries again
        log.warning("telemetry probe failed error=%s", str(e)[:300])
        return
    log.info(
        "telemetry probe lag_total=%s partitions=%s open_conversations=%s ms=%d",
        sum(probed.lag.values()),
        len(probed.lag),
        probed.open_conversations,
        (time.monotonic() - started) * 1000,
    )
