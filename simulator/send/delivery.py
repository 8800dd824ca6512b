"""Delivering a data set to a pipeline: the seam for the `send`, `run` and `replay` commands.

`generate` writes `deliveries.jsonl`, one delivery per line in delivery order. A `Target` takes
one delivery and reports what happened: `simulator.send.http_target` (ingest, with the adapters'
Genesys-style `RetryPolicy`),
`simulator.send.hub_target` (straight to Event Hubs), and `MemoryTarget`, which keeps what it was
given, for tests and dry runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapters.webhook import RetryPolicy
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
    """Still failing (5xx or no answer) after the last retry: the delivery may be lost."""
    scheduled_at: float | None = None
    """When the open-loop schedule wanted it sent (epoch seconds)."""


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
) -> Outcome:
    """Try, and retry per `policy` while the answer is retryable; every try is kept."""
    tries = [await attempt()]
    for delay in policy.delays():
        if not policy.retryable(tries[-1].status):
            break
        await sleep(delay)
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
