"""Deliveries straight to Event Hubs, bypassing ingest (`send --eventhub`).

A delivery is split per conversation by ingest's own pure splitter (`ingest.accept.plan`), so
the hub holds what ingest would have written: one event per conversation, partition key =
conversation id, the same application properties. What ingest would have rejected is sent
as-is (under a key of its own): with no ingest in front, the transform dead-letters it.
Sends go through the pipeline's publisher (`adapters.eventhub_producer`), retried like HTTP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from adapters.eventhub_producer import EventHubPublisher
from adapters.settings import PublishSettings
from adapters.webhook import RetryPolicy
from ingest.accept import AcceptanceLimits, OutboundEvent, Request, plan
from ingest.errors import BodyTooLarge, PublishFailed
from simulator.errors import UsageError
from simulator.send.delivery import Attempt, Delivery, Outcome, deliver_with_retries
from transform.deadletters import raw_bytes

SEND_TIMEOUT_S = 10.0


def split(delivery: Delivery, received_at_ms: int) -> list[OutboundEvent]:
    """The events ingest would write for this delivery, plus what it would reject, raw."""
    request = Request(
        body=delivery.body,
        headers={"x-request-id": f"simulator-line-{delivery.line}"},
        received_at_ms=received_at_ms,
        message_id=str(uuid.uuid4()),
    )
    the_plan = plan(request, AcceptanceLimits())
    events = list(the_plan.events)
    for index, letter in enumerate(the_plan.dead_letters):
        raw = raw_bytes(letter)
        key = f"simulator-rejected-{delivery.line}-{index}"
        events.append(OutboundEvent(key, raw, {"format": "unknown"}, 1))
    return events


class EventHubTarget:
    """`Target` publishing each delivery's events to the hub, with retries."""

    def __init__(
        self,
        hub: PublishSettings,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 16,
        timeout_s: float = SEND_TIMEOUT_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            msg = f"--concurrency must be at least 1, got {concurrency}"
            raise UsageError(msg)
        self.policy = policy or RetryPolicy()
        self.timeout_s = timeout_s
        self.sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._publisher = EventHubPublisher(hub.eventhub, hub.eventhub_name)

    async def _attempt(self, events: list[OutboundEvent]) -> Attempt:
        async with self._slots:
            started, began = time.time(), time.perf_counter()
            try:
                await self._publisher.publish(events, self.timeout_s)
            except BodyTooLarge as e:  # not retryable, like ingest's 413
                return Attempt(413, started, _ms(began), str(e)[:200])
            except PublishFailed as e:
                return Attempt(None, started, _ms(began), str(e)[:200])
            return Attempt(200, started, _ms(began))

    async def deliver(self, delivery: Delivery) -> Outcome:
        try:
            events = split(delivery, int(time.time() * 1000))
        except BodyTooLarge as e:
            attempt = Attempt(413, time.time(), 0.0, str(e)[:200])
            return Outcome(delivery.line, False, 413, error=attempt.error, tries=(attempt,))
        return await deliver_with_retries(
            delivery.line, lambda: self._attempt(events), self.policy, self.sleep
        )

    async def aclose(self) -> None:
        await self._publisher.close()


def _ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000
