"""The circuit breaker, driven by a fake clock."""

from __future__ import annotations

import pytest

from ingest.breaker import BreakerState, CircuitBreaker
from tests.ingest.helpers import FakeClock


def breaker(threshold: int = 3, open_seconds: float = 30) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker(threshold, open_seconds, clock), clock


def test_closed_breaker_allows_everything() -> None:
    b, _ = breaker()
    assert all(b.allow() for _ in range(100))
    assert b.state is BreakerState.CLOSED
    assert b.retry_after() == 0


def test_opens_after_n_consecutive_failures_only() -> None:
    b, _ = breaker(threshold=3)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the run
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert not b.allow()
    assert b.times_opened == 1


def test_open_breaker_refuses_and_counts_down_retry_after() -> None:
    b, clock = breaker(threshold=1, open_seconds=30)
    b.record_failure()
    assert b.retry_after() == pytest.approx(30)
    clock.advance(12.5)
    assert not b.allow()
    assert b.retry_after() == pytest.approx(17.5)


def test_half_open_lets_exactly_one_probe_through() -> None:
    b, clock = breaker(threshold=1, open_seconds=30)
    b.record_failure()
    clock.advance(30)
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()  # the probe
    assert not b.allow()  # everyone else waits for it
    assert not b.allow()


def test_successful_probe_closes() -> None:
    b, clock = breaker(threshold=2, open_seconds=5)
    b.record_failure()
    b.record_failure()
    clock.advance(5)
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.allow() and b.allow()
    b.record_failure()  # the count started again from zero
    assert b.state is BreakerState.CLOSED


def test_failed_probe_opens_again_for_a_full_period() -> None:
    b, clock = breaker(threshold=3, open_seconds=10)
    for _ in range(3):
        b.record_failure()
    clock.advance(10)
    assert b.allow()
    b.record_failure()  # one failure is enough in half-open
    assert b.state is BreakerState.OPEN
    assert b.retry_after() == pytest.approx(10)
    assert b.times_opened == 2
    clock.advance(9.9)
    assert not b.allow()
    clock.advance(0.1)
    assert b.allow()


def test_a_probe_that_never_reports_stops_blocking_after_its_lease() -> None:
    b, clock = breaker(threshold=1, open_seconds=10)
    b.record_failure()
    clock.advance(10)
    assert b.allow()
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()  # a new probe


def test_failures_while_open_do_not_extend_the_open_period() -> None:
    b, clock = breaker(threshold=1, open_seconds=10)
    b.record_failure()
    clock.advance(6)
    b.record_failure()  # a request that was in flight when it opened
    assert b.retry_after() == pytest.approx(4)


def test_snapshot_for_health() -> None:
    b, _ = breaker(threshold=1, open_seconds=10)
    b.record_failure()
    snap = b.snapshot()
    assert snap["state"] == "open"
    assert snap["consecutive_failures"] == 1
    assert snap["retry_after_seconds"] == 10
    assert snap["times_opened"] == 1


@pytest.mark.parametrize(("threshold", "seconds"), [(0, 1), (1, 0), (1, -1)])
def test_invalid_configuration_is_refused(threshold: int, seconds: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(threshold, seconds, FakeClock())
