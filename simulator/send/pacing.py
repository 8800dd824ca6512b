"""The open-loop sender: start delivery *i* at `t0 + i / rate`, whatever the answers are doing.

A closed loop (send the next when one finishes) slows down exactly when the pipeline does and
hides its latency; an open loop keeps the offered load, so queueing shows as latency and lag.
The concurrency limit is the target's (requests in flight); here a cap on unfinished
deliveries only bounds memory. `rate=0` means as fast as `max_outstanding` allows.

This module measures real time (the wall clock for timestamps comparable with the pipeline's,
a monotonic clock for the schedule); nothing it measures feeds the data set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from simulator.errors import UsageError
from simulator.send.delivery import Delivery, Outcome, Target


@dataclass(slots=True)
class SendResult:
    """Every outcome, in line order, with the schedule that produced them."""

    outcomes: list[Outcome] = field(default_factory=list)
    target_rate: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def seconds(self) -> float:
        return max(self.finished_at - self.started_at, 0.0)

    @property
    def achieved_rate(self) -> float:
        """First attempts per second between the first and the last start."""
        starts = sorted(o.tries[0].started_at for o in self.outcomes if o.tries)
        if len(starts) < 2 or starts[-1] <= starts[0]:
            return 0.0
        return (len(starts) - 1) / (starts[-1] - starts[0])


async def send_all(
    deliveries: Iterable[Delivery],
    target: Target,
    *,
    rate: float,
    max_outstanding: int = 10_000,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> SendResult:
    """Deliver everything on schedule; returns when every delivery has its final outcome."""
    if rate < 0:
        msg = f"--rate must be ≥ 0 requests/s (0: as fast as possible), got {rate}"
        raise UsageError(msg)
    if max_outstanding < 1:
        msg = f"at least one delivery must be allowed in flight, got {max_outstanding}"
        raise UsageError(msg)
    result = SendResult(target_rate=rate, started_at=time.time())
    outstanding = asyncio.Semaphore(max_outstanding)
    wall0, mono0 = time.time(), time.monotonic()

    async def one(delivery: Delivery, scheduled_at: float) -> None:
        try:
            outcome = await target.deliver(delivery)
        finally:
            outstanding.release()
        outcome = dataclasses.replace(outcome, scheduled_at=scheduled_at)
        result.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    async with asyncio.TaskGroup() as group:
        for index, delivery in enumerate(deliveries):
            offset = index / rate if rate > 0 else 0.0
            delay = mono0 + offset - time.monotonic()
            if delay > 0:  # behind schedule: start at once and catch up
                await asyncio.sleep(delay)
            await outstanding.acquire()
            scheduled_at = wall0 + offset if rate > 0 else time.time()
            group.create_task(one(delivery, scheduled_at))
    result.finished_at = time.time()
    result.outcomes.sort(key=lambda o: o.line)
    return result
