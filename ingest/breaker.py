"""A circuit breaker around the Event Hubs producer. Pure: the clock is injected.

closed ──N consecutive failures──▶ open ──open period over──▶ half-open ──probe ok──▶ closed
                                     ▲                             │
                                     └────────probe failed─────────┘

While open, callers are refused at once (503 with Retry-After) instead of waiting for a send
timeout each. After the open period one request is let through as a probe; the others keep being
refused until it reports. A probe that never reports (its task was killed) stops blocking once
its lease, one open period long, runs out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any


class BreakerState(StrEnum):
    """Where the breaker is; values are stable strings for health answers and metrics."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Counts consecutive failures; refuses calls while open; probes once to close again."""

    def __init__(
        self,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        """`clock` is monotonic seconds (e.g. `time.monotonic`); tests pass a fake one."""
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if open_seconds <= 0:
            raise ValueError(f"open_seconds must be > 0, got {open_seconds}")
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()  # the host may call from several threads
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started_at: float | None = None
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose period is over reads as half-open)."""
        with self._lock:
            return self._current(self._clock())

    def _current(self, now: float) -> BreakerState:
        if self._state is BreakerState.OPEN and now - self._opened_at >= self._open_seconds:
            self._state = BreakerState.HALF_OPEN
            self._probe_started_at = None
        return self._state

    def allow(self) -> bool:
        """Whether a call may go ahead now; in half-open, True hands out the one probe."""
        with self._lock:
            now = self._clock()
            state = self._current(now)
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.OPEN:
                return False
            lease_over = (
                self._probe_started_at is not None
                and now - self._probe_started_at >= self._open_seconds
            )
            if self._probe_started_at is None or lease_over:
                self._probe_started_at = now
                return True
            return False

    def record_success(self) -> None:
        """A call went through: close and forget past failures."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probe_started_at = None

    def record_failure(self) -> None:
        """A call failed or timed out: open after N in a row, or at once after a failed probe."""
        with self._lock:
            now = self._clock()
            state = self._current(now)
            self._failures += 1
            if state is BreakerState.HALF_OPEN or (
                state is BreakerState.CLOSED and self._failures >= self._threshold
            ):
                self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._probe_started_at = None
        self.times_opened += 1

    def retry_after(self) -> float:
        """Seconds a refused caller should wait: what is left of the open period (>= 0)."""
        with self._lock:
            now = self._clock()
            state = self._current(now)
            if state is BreakerState.OPEN:
                return max(0.0, self._open_seconds - (now - self._opened_at))
            if state is BreakerState.HALF_OPEN and self._probe_started_at is not None:
                return max(0.0, self._open_seconds - (now - self._probe_started_at))
            return 0.0

    def snapshot(self) -> dict[str, Any]:
        """For the health answer."""
        retry_after = self.retry_after()
        with self._lock:
            return {
                "state": str(self._current(self._clock())),
                "consecutive_failures": self._failures,
                "failure_threshold": self._threshold,
                "open_seconds": self._open_seconds,
                "retry_after_seconds": round(retry_after, 3),
                "times_opened": self.times_opened,
            }
