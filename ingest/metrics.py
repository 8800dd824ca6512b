"""In-process metrics: counters and latency histograms a telemetry exporter can read.

Deliberately tiny (no dependency): `snapshot()` gives plain values an exporter turns into
OpenTelemetry / Application Insights metrics, and the health answer and tests read directly.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

LabelKey = tuple[tuple[str, str], ...]
LATENCY_BUCKETS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclass(slots=True)
class Histogram:
    """Counts of observations per upper bound, plus count, sum and max."""

    bounds: Sequence[float]
    buckets: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0
    maximum: float = 0.0

    def __post_init__(self) -> None:
        self.buckets = [0] * (len(self.bounds) + 1)  # the last one is +Inf

    def observe(self, value: float) -> None:
        """Add one observation."""
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value
        self.maximum = max(self.maximum, value)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (the max for the +Inf bucket)."""
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for index, n in enumerate(self.buckets):
            seen += n
            if seen >= rank and n:
                return self.bounds[index] if index < len(self.bounds) else self.maximum
        return self.maximum

    def as_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {
            "count": self.count,
            "sum": round(self.total, 3),
            "max": round(self.maximum, 3),
            "p50": self.quantile(0.5),
            "p99": self.quantile(0.99),
            "buckets": dict(zip([*map(str, self.bounds), "+Inf"], self.buckets, strict=True)),
        }


class MetricsRegistry:
    """Named, labelled counters and histograms; safe to update from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, LabelKey], int] = {}
        self._histograms: dict[tuple[str, LabelKey], Histogram] = {}

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add to a counter."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount

    def observe(
        self,
        name: str,
        value: float,
        bounds: Sequence[float] = LATENCY_BUCKETS_MS,
        **labels: str,
    ) -> None:
        """Add an observation to a histogram."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            histogram = self._histograms.get(key)
            if histogram is None:
                histogram = self._histograms[key] = Histogram(bounds)
            histogram.observe(value)

    def counter(self, name: str, **labels: str) -> int:
        """A counter's value (0 if never incremented)."""
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name: str) -> int:
        """A counter summed over all its labels."""
        with self._lock:
            return sum(v for (n, _), v in self._counters.items() if n == name)

    def histogram(self, name: str, **labels: str) -> Histogram | None:
        """A histogram, or None if nothing was observed."""
        with self._lock:
            return self._histograms.get((name, tuple(sorted(labels.items()))))

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every series as `{name: [{labels: {...}, value: n} | {labels, histogram}]}`."""
        result: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for (name, labels), value in sorted(self._counters.items()):
                result.setdefault(name, []).append({"labels": dict(labels), "value": value})
            for (name, labels), histogram in sorted(
                self._histograms.items(), key=lambda item: item[0]
            ):
                result.setdefault(name, []).append(
                    {"labels": dict(labels), "histogram": histogram.as_dict()}
                )
        return result


REGISTRY = MetricsRegistry()
"""The process-wide registry the function app reports to (tests make their own)."""

# Metric names (stable: dashboards and the exporter key on them).
REQUESTS = "ingest_requests"
"""Requests by `outcome` (accepted / rejected / unavailable / refused) and HTTP `status`."""
PAYLOADS_ACCEPTED = "ingest_payloads_accepted"
PAYLOADS_PARTIAL = "ingest_payloads_partial"
PAYLOADS_REJECTED = "ingest_payloads_rejected"
"""Payloads dead-lettered at ingest, by `reason`."""
HEARTBEATS = "ingest_heartbeats"
"""Notifications API heartbeats (`channel.metadata`) a relay forwarded: answered, not sent."""
EVENTS_SENT = "ingest_events_sent"
SEND_FAILURES = "ingest_send_failures"
"""Failed sends by `kind` (timeout / error / circuit-open)."""
SEND_LATENCY_MS = "ingest_send_latency_ms"
REQUEST_LATENCY_MS = "ingest_request_latency_ms"
