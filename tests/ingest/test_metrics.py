"""The in-process metrics registry."""

from __future__ import annotations

from ingest.metrics import Histogram, MetricsRegistry


def test_counters_by_label_and_total() -> None:
    registry = MetricsRegistry()
    registry.inc("requests", outcome="accepted")
    registry.inc("requests", 2, outcome="accepted")
    registry.inc("requests", outcome="rejected")
    assert registry.counter("requests", outcome="accepted") == 3
    assert registry.counter("requests", outcome="missing") == 0
    assert registry.total("requests") == 4


def test_histogram_buckets_and_quantiles() -> None:
    h = Histogram((1, 10, 100))
    for value in [0.5, 5, 5, 50, 500]:
        h.observe(value)
    assert h.buckets == [1, 2, 1, 1]
    assert h.quantile(0.5) == 10
    assert h.quantile(0.99) == 500  # the +Inf bucket reports the max seen
    assert Histogram((1,)).quantile(0.5) is None


def test_snapshot_is_plain_values() -> None:
    registry = MetricsRegistry()
    registry.inc("a", kind="x")
    registry.observe("lat", 3.0, bounds=(1, 5))
    snap = registry.snapshot()
    assert snap["a"] == [{"labels": {"kind": "x"}, "value": 1}]
    (series,) = snap["lat"]
    assert series["histogram"]["count"] == 1
    assert series["histogram"]["buckets"] == {"1": 0, "5": 1, "+Inf": 0}
