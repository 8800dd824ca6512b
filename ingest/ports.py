"""What the ingest service needs from the outside world (implemented in `adapters/`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ingest.accept import OutboundEvent
from schemas.record import DeadLetter


class EventPublisher(Protocol):
    """Event Hubs, or an in-memory twin.

    `publish` returns only once every event is durably written, each to the partition its
    `partition_key` hashes to, in order per key. It raises `PublishFailed` when the service
    did not confirm (some events may have been written: the caller answers 503 and the sender's
    retry duplicates them, which the consumer deduplicates), and `BodyTooLarge` before sending
    anything when an event cannot fit the hub's size limit.
    """

    async def publish(self, events: Sequence[OutboundEvent], timeout: float) -> None: ...


class AsyncDeadLetterSink(Protocol):
    """Dead letters; writing the same id twice keeps one. Transient failures raise
    `transform.errors.StorageUnavailable`."""

    async def write(self, letter: DeadLetter) -> None: ...
