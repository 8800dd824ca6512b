"""Delivering a data set to a pipeline: the seam for the `send`, `run` and `replay` commands.

`generate` writes `deliveries.jsonl`, one delivery per line in delivery order. A `Target` takes
one delivery and reports what happened: `simulator.send.http_target` (ingest, with the adapters'
`RetryPolicy`: Genesys-style, or an EventBridge API destination's for EventBridge events),
`simulator.send.hub_target` (straight to Event Hubs), and `MemoryTarget`, which keeps what it was
given, for tests and dry runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Final, Protocol

from adapters.webhook import RetryPolicy, RetrySchedule
from simulator.errors import InputError


@dataclass(frozen=True, slots=True)
class Delivery:
    """One line of `deliveries.jsonl`: a payload, an array of payloads, or broken text."""

    line: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a delivery: its answer (None: no answer at all) and how long it took."""

    status: int | None
    started_at: float
    """Wall-clock epoch seconds (comparable with the pipeline's processing timestamps)."""
    latency_ms: float
    error: str | None = None
    retry_after_s: float | None = None
    """The answer's `Retry-After`, seconds (what an EventBridge sender waits at least)."""


WEBHOOK: Final = "webhook"
"""A relay or Genesys' own webhook: Genesys-style retries."""
EVENTBRIDGE: Final = "eventbridge"
"""An EventBridge API destination: its headers, its retries and its maximum event age."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a target did with one delivery."""

    line: int
    accepted: bool
    status: int | None = None  # HTTP status, when there is one
    attempts: int = 1
    latency_ms: float = 0.0
    error: str | None = None
    tries: tuple[Attempt, ...] = ()
    gave_up: bool = False
    """The last answer was still retryable (5xx, no answer, 429 on the EventBridge route) when
    the retries ran out, the maximum event age came, or a negative Retry-After said stop: the
    delivery may be lost."""
    scheduled_at: float | None = None
    """When the open-loop schedule wanted it sent (epoch seconds)."""
    route: str = WEBHOOK
    """How it was sent: `webhook` or `eventbridge` (an API destination's behaviour)."""
    expired: bool = False
    """Given up because the next retry would pass the maximum event age (EventBridge)."""


class Target(Protocol):
    """Somewhere deliveries go: ingest over HTTP, the event hub, or memory."""

    async def deliver(self, delivery: Delivery) -> Outcome: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class MemoryTarget:
    """Accepts everything and keeps it (tests, dry runs)."""

    received: list[Delivery] = field(default_factory=list)

    async def deliver(self, delivery: Delivery) -> Outcome:
        self.received.append(delivery)
        return Outcome(delivery.line, accepted=True)

    async def aclose(self) -> None:
        pass


async def deliver_with_retries(
    line: int,
    attempt: Callable[[], Awaitable[Attempt]],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    *,
    rng: Random | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    route: str = WEBHOOK,
) -> Outcome:
    """Try, and retry per `policy` while the answer is retryable (`RetrySchedule`); every try is
    kept.

    `rng` jitters the waits of a jittering policy; with a maximum event age, a retry that would
    start later than that after the first try is not made (the delivery expires).
    """
    retries = RetrySchedule(policy, monotonic(), rng)
    tries = [await attempt()]
    while (
        wait := retries.next_wait(tries[-1].status, tries[-1].retry_after_s, monotonic())
    ) is not None:
        await sleep(wait)
        tries.append(await attempt())
    last = tries[-1]
    accepted = last.status is not None and 200 <= last.status < 300
    return Outcome(
        line,
        accepted=accepted,
        status=last.status,
        attempts=len(tries),
        latency_ms=last.latency_ms,
        error=last.error,
        tries=tuple(tries),
        gave_up=policy.retryable(last.status),
        route=route,
        expired=retries.expired,
    )


def read_deliveries(path: Path) -> Iterator[Delivery]:
    """The deliveries of a data set, in order, line numbers from 1."""
    try:
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                yield Delivery(number, line.rstrip(b"\r\n"))
    except FileNotFoundError as e:
        msg = f"{path} does not exist; run `simulator generate` first"
        raise InputError(msg) from e
