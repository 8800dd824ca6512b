"""Drive a `TransformService` the way the Functions host would, on simulated time.

Deliveries are sent at a steady rate, routed to Event Hubs partitions by conversation id,
collected per partition every `poll_ms` into batches of at most `batch_size` (as the trigger
does), each with its Event Hubs position; the timer ticks every `timer_ms` until nothing is
due. At the end the clock moves past every grace period and the timer drains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from adapters.memory import ManualClock
from adapters.partition_hash import partition_index
from schemas.timestamps import ms_to_datetime
from tests.transform_azure.realistic import Sent
from transform.normalize import parse_delivery
from transform.service import Counts, Delivery, TransformService
from transform.state import SourcePosition


def partition_of(conversation_id: str, partitions: int) -> str:
    """Where Event Hubs (the SDK's hash, as the emulator uses it) puts a conversation."""
    return str(partition_index(conversation_id, partitions))


@dataclass(slots=True)
class Positioned:
    """A delivery as the consumer receives it."""

    delivery: Delivery
    at_ms: int


@dataclass(slots=True)
class Hub:
    """Partitions of positioned deliveries, as Event Hubs would hold them."""

    partitions: dict[str, list[Positioned]] = field(default_factory=dict)

    @classmethod
    def route(cls, sent: Sequence[Sent], partitions: int, rate_per_s: float, start_ms: int) -> Hub:
        hub = cls({str(p): [] for p in range(partitions)})
        for number, item in enumerate(sent):
            at = start_ms + int(number * 1000 / rate_per_s)
            partition = partition_of(item.conversation_id, partitions)
            queue = hub.partitions[partition]
            sequence = len(queue)
            source = {
                "partition": partition,
                "sequence_number": sequence,
                "offset": str(sequence * 512),
            }
            position = SourcePosition(partition, sequence, at)
            queue.append(Positioned(Delivery(item.body, position, source), at))
        return hub


@dataclass(slots=True)
class RunResult:
    """What a simulated run did."""

    counts: Counts
    batches: int
    ticks: int


def run(
    service: TransformService,
    clock: ManualClock,
    hub: Hub,
    *,
    batch_size: int = 100,
    poll_ms: int = 1000,
    timer_ms: int = 30_000,
    on_batch: Callable[[list[Delivery]], Counts] | None = None,
) -> RunResult:
    """Deliver everything in `hub`, ticking the timer on schedule, then drain."""
    counts = Counts()
    cursors = dict.fromkeys(hub.partitions, 0)
    start = min((q[0].at_ms for q in hub.partitions.values() if q), default=0)
    end = max((q[-1].at_ms for q in hub.partitions.values() if q), default=0)
    now = start
    next_tick = start + timer_ms
    batches = ticks = 0
    process = on_batch or service.process
    while now <= end + poll_ms or any(cursors[p] < len(q) for p, q in hub.partitions.items()):
        clock.set(ms_to_datetime(now))
        for partition, queue in hub.partitions.items():
            while cursors[partition] < len(queue) and queue[cursors[partition]].at_ms <= now:
                taken = queue[cursors[partition] : cursors[partition] + batch_size]
                taken = [p for p in taken if p.at_ms <= now]
                cursors[partition] += len(taken)
                counts.add(process([p.delivery for p in taken]))
                batches += 1
        if now >= next_tick:
            counts.add(drain(service))
            ticks += 1
            next_tick += timer_ms
        now += poll_ms
    clock.set(ms_to_datetime(now + service.timing.grace_ms + timer_ms))
    counts.add(drain(service))
    return RunResult(counts, batches, ticks + 1)


def drain(service: TransformService, limit: int = 1000, rounds: int = 20) -> Counts:
    """The timer function's loop: tick until nothing more is due (bounded)."""
    counts = Counts()
    for _ in range(rounds):
        step = service.tick(limit=limit)
        counts.add(step)
        if step.due < limit:
            break
    return counts


def load_jsonl(path: Path) -> list[Sent]:
    """A deliveries file as ingest forwards it: one event per conversation per line."""
    sent: list[Sent] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines):
            sent.extend(split_by_conversation(number, line.rstrip(b"\r\n")))
    return sent


def split_by_conversation(number: int, body: bytes) -> list[Sent]:
    """Split an array delivery per conversation, as ingest does (SPEC 6)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, list):
        events = parse_delivery(body).events
        conversation_id = events[0].conversation_id if events else f"malformed-{number}"
        return [Sent(number, body, conversation_id)]
    groups: dict[str, list[object]] = {}
    for payload in document:
        events = parse_delivery(orjson.dumps(payload)).events
        groups.setdefault(events[0].conversation_id if events else "", []).append(payload)
    return [Sent(number, orjson.dumps(payloads), cid) for cid, payloads in groups.items()]
