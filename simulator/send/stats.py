"""Figures of a send: counts, latency percentiles and per-second series (for tables and charts)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.send.delivery import EVENTBRIDGE, Outcome

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of values already sorted; None when there are none."""
    if not sorted_values:
        return None
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def distribution(values: Iterable[float]) -> dict[str, float | None]:
    """`p50`…`p99`, `max`, `mean` and `count` of some values (ms or s)."""
    ordered = sorted(values)
    out: dict[str, float | None] = {f"p{p}": _round(percentile(ordered, p)) for p in PERCENTILES}
    out["max"] = _round(ordered[-1]) if ordered else None
    out["mean"] = _round(sum(ordered) / len(ordered)) if ordered else None
    out["count"] = len(ordered)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True, slots=True)
class SendSummary:
    """What the sender saw."""

    deliveries: int
    accepted: int
    rejected: int
    """Final 4xx answers (malformed bodies: 400)."""
    gave_up: int
    requests: int
    retries: int
    unavailable: int
    """503 answers, any try."""
    server_errors: int
    """Other 5xx answers, any try."""
    no_answer: int
    """Tries with no answer: timeouts, refused or reset connections."""
    latency_ms: dict[str, float | None]
    """Per try that got an answer."""
    lag_ms: dict[str, float | None]
    """First try's start behind its schedule (open-loop accuracy)."""
    eventbridge: int = 0
    """Deliveries sent as an EventBridge API destination sends them."""
    throttled: int = 0
    """429 answers, any try."""
    expired: int = 0
    """EventBridge deliveries given up at the maximum event age (its dead-letter queue)."""

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> SendSummary:
        tries = [t for o in outcomes for t in o.tries]
        lags = [
            max(o.tries[0].started_at - o.scheduled_at, 0.0) * 1000
            for o in outcomes
            if o.tries and o.scheduled_at is not None
        ]
        final_4xx = sum(1 for o in outcomes if o.status is not None and 400 <= o.status < 500)
        return cls(
            deliveries=len(outcomes),
            accepted=sum(o.accepted for o in outcomes),
            rejected=final_4xx,
            gave_up=sum(o.gave_up for o in outcomes),
            requests=len(tries),
            retries=sum(max(o.attempts - 1, 0) for o in outcomes),
            unavailable=sum(t.status == 503 for t in tries),
            server_errors=sum(
                t.status is not None and t.status >= 500 and t.status != 503 for t in tries
            ),
            no_answer=sum(t.status is None for t in tries),
            latency_ms=distribution(t.latency_ms for t in tries if t.status is not None),
            lag_ms=distribution(lags),
            eventbridge=sum(o.route == EVENTBRIDGE for o in outcomes),
            throttled=sum(t.status == 429 for t in tries),
            expired=sum(o.expired for o in outcomes),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "deliveries": self.deliveries,
            "accepted": self.accepted,
            "rejected_4xx": self.rejected,
            "gave_up": self.gave_up,
            "requests": self.requests,
            "retries": self.retries,
            "status_503": self.unavailable,
            "status_5xx_other": self.server_errors,
            "no_answer": self.no_answer,
            "latency_ms": self.latency_ms,
            "schedule_lag_ms": self.lag_ms,
            "eventbridge": {
                "deliveries": self.eventbridge,
                "status_429": self.throttled,
                "expired": self.expired,
            },
        }


def per_second(outcomes: Sequence[Outcome], origin: float) -> list[dict[str, Any]]:
    """One row per second since `origin`: requests started, answered, 503s, latency p50/p99."""
    buckets: dict[int, list[tuple[int | None, float]]] = defaultdict(list)
    for outcome in outcomes:
        for t in outcome.tries:
            buckets[int(t.started_at - origin)].append((t.status, t.latency_ms))
    if not buckets:
        return []
    rows = []
    for second in range(min(buckets), max(buckets) + 1):
        tries = buckets.get(second, [])
        answered = sorted(ms for status, ms in tries if status is not None)
        rows.append(
            {
                "second": second,
                "requests": len(tries),
                "ok": sum(1 for status, _ in tries if status is not None and status < 300),
                "status_503": sum(1 for status, _ in tries if status == 503),
                "no_answer": sum(1 for status, _ in tries if status is None),
                "p50_ms": _round(percentile(answered, 50)),
                "p99_ms": _round(percentile(answered, 99)),
            }
        )
    return rows
