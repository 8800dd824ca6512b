"""functions.telemetry: the figures the app keeps, collected by an in-memory metric reader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from adapters.opcount import OperationCounter
from functions import telemetry
from ingest import metrics as m
from ingest.metrics import MetricsRegistry
from transform.service import Counts


class Collected:
    """`points[name]` = list of (attributes, value) from one collection."""

    def __init__(self, reader: InMemoryMetricReader) -> None:
        self.points: dict[str, list[tuple[dict[str, Any], float]]] = {}
        data = reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    self.points[metric.name] = [
                        (dict(p.attributes or {}), p.value)  # type: ignore[union-attr]
                        for p in metric.data.data_points
                    ]

    def value(self, name: str, **attributes: str) -> float | None:
        for found, value in self.points.get(name, []):
            if found == attributes:
                return value
        return None


@pytest.fixture
def wired() -> Iterator[tuple[telemetry.Telemetry, InMemoryMetricReader, dict[str, Any]]]:
    reader = InMemoryMetricReader()
    registry = MetricsRegistry()
    storage = OperationCounter()
    totals: dict[str, Any] = {
        "counts": Counts(),
        "extra": {"batches": 0, "timer_runs": 0, "parked": 0},
    }
    sources = telemetry.Sources(
        ingest=registry,
        storage=storage,
        transform=lambda: (totals["counts"], totals["extra"]),
    )
    installed = telemetry.install(MeterProvider(metric_readers=[reader]), sources)
    yield installed, reader, {"registry": registry, "storage": storage, "totals": totals}
    telemetry.uninstall()


def test_ingest_counters_and_latency_quantiles_per_interval(wired: Any) -> None:
    _, reader, parts = wired
    registry: MetricsRegistry = parts["registry"]
    for _ in range(3):
        registry.inc(m.REQUESTS, outcome="accepted", status="200")
    registry.inc(m.REQUESTS, outcome="unavailable", status="503")
    registry.inc(m.REQUESTS, outcome="rejected", status="400")
    registry.inc(m.EVENTS_SENT, 7)
    registry.inc(m.REQUESTS, outcome="heartbeat", status="200")
    registry.inc(m.HEARTBEATS, 2)
    for value in (3.0, 4.0, 40.0):
        registry.observe(m.SEND_LATENCY_MS, value)

    first = Collected(reader)
    assert first.value(m.REQUESTS, outcome="accepted", status="200") == 3
    assert first.value(m.REQUESTS, outcome="unavailable", status="503") == 1
    assert first.value(m.REQUESTS, outcome="rejected", status="400") == 1
    assert first.value(m.EVENTS_SENT) == 7
    assert first.value(m.HEARTBEATS) == 2
    assert first.value(m.REQUESTS, outcome="heartbeat", status="200") == 1
    assert first.value(m.SEND_LATENCY_MS, stat="p50") == 5  # the bucket bound holding 4 ms
    assert first.value(m.SEND_LATENCY_MS, stat="p99") == 50
    assert first.value(m.SEND_LATENCY_MS, stat="mean") == pytest.approx(47 / 3)

    # The next interval reports only what is new; nothing new, no latency point.
    registry.observe(m.SEND_LATENCY_MS, 900.0)
    second = Collected(reader)
    assert second.value(m.SEND_LATENCY_MS, stat="p50") == 1000
    assert second.value(m.SEND_LATENCY_MS, stat="mean") == pytest.approx(900)
    assert second.value(m.REQUESTS, outcome="accepted", status="200") == 3  # cumulative
    third = Collected(reader)
    assert third.value(m.SEND_LATENCY_MS, stat="p50") is None


def test_transform_counts_storage_requests_and_latency(wired: Any) -> None:
    installed, reader, parts = wired
    parts["totals"]["counts"] = Counts(
        micro_events=120,
        applied=100,
        duplicates=15,
        dead_letters=2,
        filtered_conversations=3,
        filtered_events=21,
    )
    parts["totals"]["extra"] = {"batches": 4, "timer_runs": 1, "parked": 0}
    storage: OperationCounter = parts["storage"]
    storage.count("table_writes", 6)
    storage.count("blob_writes", 3)
    storage.count("cache_hits", 50)  # not a request: not exported as one
    telemetry.observe(telemetry.TRANSFORM_BATCH_MS, 80.0)

    collected = Collected(reader)
    assert collected.value("transform_micro_events") == 120
    assert collected.value("transform_duplicates") == 15
    assert collected.value("transform_dead_letters") == 2
    assert collected.value("transform_batches") == 4
    assert collected.value("transform_filtered_conversations") == 3
    assert collected.value("transform_filtered_events") == 21
    assert collected.value("transform_heartbeats") == 0
    assert collected.value("storage_operations", kind="table_writes") == 6
    assert collected.value("storage_operations", kind="blob_writes") == 3
    assert {a["kind"] for a, _ in collected.points["storage_operations"]} == set(
        telemetry.STORAGE_REQUEST_KINDS
    )
    assert collected.value(telemetry.TRANSFORM_BATCH_MS, stat="p50") == 100
    assert installed is telemetry.active()


def test_probe_values_are_gauges(wired: Any) -> None:
    installed, reader, _ = wired
    assert (
        "consumer_lag_events_total" not in Collected(reader).points
        or not Collected(reader).points["consumer_lag_events_total"]
    )
    installed.set_lag({"0": 12_000, "1": 5})
    installed.set_open_conversations(321)
    collected = Collected(reader)
    assert collected.value("consumer_lag_events", partition="0") == 12_000
    assert collected.value("consumer_lag_events", partition="1") == 5
    assert collected.value("consumer_lag_events_total") == 12_005
    assert collected.value("open_conversations") == 321


def test_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    telemetry.uninstall()
    assert telemetry.exporter_kind({}) is None
    assert telemetry.exporter_kind({"TELEMETRY_CONSOLE": "true"}) == "console"
    assert (
        telemetry.exporter_kind({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"})
        == "azure-monitor"
    )
    assert telemetry.setup({}) is False
    assert telemetry.active() is None
    telemetry.observe(telemetry.TRANSFORM_BATCH_MS, 1.0)  # a no-op, not an error
    assert telemetry.setup({"TELEMETRY_CONSOLE": "true"}) is False  # decided once per process
    telemetry.uninstall()


@pytest.mark.parametrize("interval", ["0", "soon", "nan"])
def test_a_bad_export_interval_leaves_telemetry_off_and_says_why(
    interval: str, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry.uninstall()
    env = {"TELEMETRY_CONSOLE": "true", "TELEMETRY_EXPORT_INTERVAL_SECONDS": interval}
    try:
        with caplog.at_level("ERROR", logger=telemetry.__name__):
            assert telemetry.setup(env) is False  # never a stopped pipeline
        assert telemetry.active() is None
        assert "TELEMETRY_EXPORT_INTERVAL_SECONDS must be" in caplog.text
    finally:
        telemetry.uninstall()
