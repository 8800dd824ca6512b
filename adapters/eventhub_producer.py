"""Event Hubs publisher for ingest: one async producer per worker process, reused.

The producer is created on first use under a lock (concurrent first requests share one), kept
for the life of the process and closed on shutdown (`close`, or `close_at_exit` from an atexit
hook). It is bound to the event loop it was created on: the Functions worker has one loop; a
new loop (tests) gets a new producer.

`publish` groups events by partition key, packs each key's events into as few batches as fit
(`create_batch(partition_key=…)`, a full batch starts the next), builds every batch before
sending any (so a size error sends nothing), then sends keys concurrently and each key's
batches in order. Any SDK failure becomes `PublishFailed`; the producer stays: the SDK reopens
its links itself, and closing a shared producer would fail every other in-flight request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.eventhub import EventData, EventDataBatch
from azure.eventhub.aio import EventHubProducerClient

from adapters.clients import eventhub_producer
from adapters.settings import EventHubConnection
from ingest.accept import OutboundEvent
from ingest.errors import BodyTooLarge, PublishFailed

log = logging.getLogger(__name__)

EVENT_HUBS_MAX_EVENT_BYTES = 1024 * 1024


def _by_key(events: Sequence[OutboundEvent]) -> dict[str, list[OutboundEvent]]:
    grouped: dict[str, list[OutboundEvent]] = {}
    for event in events:
        grouped.setdefault(event.partition_key, []).append(event)
    return grouped


def _too_large(event: OutboundEvent, limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"an event of conversation {event.partition_key[:80]!r} is {len(event.body)} bytes and "
        f"does not fit an Event Hubs batch of {limit} bytes: lower INGEST_MAX_EVENT_BYTES "
        "below the hub's message size limit, or send smaller payloads"
    )


class EventHubPublisher:
    """`ingest.ports.EventPublisher` over `azure.eventhub.aio.EventHubProducerClient`."""

    def __init__(
        self, connection: EventHubConnection, eventhub_name: str, **client_kwargs: Any
    ) -> None:
        """Nothing connects until the first `publish`."""
        self._connection = connection
        self._eventhub_name = eventhub_name
        # SDK retries must fit inside our send timeout: few and quick, the sender retries too.
        self._client_kwargs: dict[str, Any] = {
            "retry_total": 2,
            "retry_backoff_factor": 0.2,
            "retry_backoff_max": 2,
            **client_kwargs,
        }
        self._client: EventHubProducerClient | None = None
        self._credential: AsyncTokenCredential | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self.clients_created = 0

    @property
    def eventhub_name(self) -> str:
        """The hub events go to."""
        return self._eventhub_name

    async def client(self) -> EventHubProducerClient:
        """The producer of this loop, created on first use; concurrent callers share it."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._client is not None:
                log.info("event loop changed: the old producer is dropped with its loop")
            self._client, self._credential = None, None
            self._loop, self._lock = loop, asyncio.Lock()
        assert self._lock is not None
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client, self._credential = eventhub_producer(
                        self._connection, self._eventhub_name, **self._client_kwargs
                    )
                    self.clients_created += 1
                    log.info(
                        "event hubs producer created eventhub=%s connection=%s",
                        self._eventhub_name,
                        self._connection.describe(),
                    )
        return self._client

    async def publish(self, events: Sequence[OutboundEvent], timeout: float) -> None:
        """Send every event with its partition key; return once all are confirmed."""
        if not events:
            return
        try:
            client = await self.client()
            plans = [await self._batches(client, key, evs) for key, evs in _by_key(events).items()]
        except BodyTooLarge:
            raise
        except Exception as e:
            raise self._failed(e) from e
        try:
            async with asyncio.TaskGroup() as group:
                for batches in plans:
                    group.create_task(self._send_in_order(client, batches, timeout))
        except ExceptionGroup as errors:
            first = errors.exceptions[0]
            raise self._failed(first) from first

    def _failed(self, error: BaseException) -> PublishFailed:
        return PublishFailed(
            f"Event Hubs send to {self._eventhub_name!r} failed: "
            f"{type(error).__name__}: {str(error)[:300]}"
        )

    async def _batches(
        self, client: EventHubProducerClient, key: str, events: list[OutboundEvent]
    ) -> list[EventDataBatch]:
        batches = [await client.create_batch(partition_key=key)]
        for event in events:
            data = EventData(event.body)
            data.properties = {name: value for name, value in event.properties.items()}
            try:
                batches[-1].add(data)
            except ValueError:
                if len(batches[-1]) == 0:
                    raise _too_large(event, batches[-1].max_size_in_bytes) from None
                batches.append(await client.create_batch(partition_key=key))
                try:
                    batches[-1].add(data)
                except ValueError:
                    raise _too_large(event, batches[-1].max_size_in_bytes) from None
        return batches

    @staticmethod
    async def _send_in_order(
        client: EventHubProducerClient, batches: list[EventDataBatch], timeout: float
    ) -> None:
        for batch in batches:
            await client.send_batch(batch, timeout=timeout)

    async def close(self) -> None:
        """Close the producer (and its credential); the next publish creates a new one."""
        client, credential = self._client, self._credential
        self._client = self._credential = None
        if client is not None:
            await client.close()
        if credential is not None:
            await credential.close()

    def close_at_exit(self) -> None:
        """Best-effort close for an atexit hook: runs `close` on the producer's idle loop."""
        loop = self._loop
        if self._client is None or loop is None or loop.is_closed() or loop.is_running():
            return  # a running loop belongs to someone else; a closed one took the sockets along
        try:
            loop.run_until_complete(asyncio.wait_for(self.close(), 5))
        except Exception as e:  # at exit, a failed close must not hide the real exit status
            log.debug("producer close at exit failed: %r", e)


@dataclass(slots=True)
class InMemoryEventPublisher:
    """The publisher's twin: same size rule, events kept per partition key; failures on demand."""

    max_event_bytes: int = EVENT_HUBS_MAX_EVENT_BYTES
    sent: list[OutboundEvent] = field(default_factory=list)
    fail_with: Exception | None = None
    """Raise this (as `PublishFailed`) on every publish while set."""
    fail_after: int | None = None
    """Accept this many events of a publish, then fail (a half-written request)."""
    delay_seconds: float = 0.0
    calls: int = 0

    async def publish(self, events: Sequence[OutboundEvent], timeout: float) -> None:
        """Keep the events, or fail as configured."""
        self.calls += 1
        for event in events:
            if len(event.body) > self.max_event_bytes:
                raise _too_large(event, self.max_event_bytes)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_with is not None:
            raise PublishFailed(f"in-memory publisher failing: {self.fail_with}")
        for count, event in enumerate(events):
            if self.fail_after is not None and count >= self.fail_after:
                raise PublishFailed(f"in-memory publisher failed after {count} events")
            self.sent.append(event)

    def by_key(self) -> dict[str, list[OutboundEvent]]:
        """Sent events grouped by partition key, in order."""
        return _by_key(self.sent)
