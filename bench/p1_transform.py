"""P1: offline transform throughput on one core (SPEC 12: >= 200,000 micro-events/s).

Measures the transform core — validate, normalize, dedupe, fold, finalize — on a fixed
simulator input held in memory, with no output I/O:

- `core`: the batch service over a store that keeps state objects (no serialization);
- `replay`: the offline replay as shipped, whose in-memory store encodes and checks every
  state like Azure Tables would and keeps every state decoded, as `python -m transform replay
  --workers 1` runs it (`bench.replay_vs_naive` times the default worker count too);
- `parse`: normalization alone.

Each is timed in CPU seconds of this process (one core), at 1x, 2x and 4x the work.

    python -m bench.p1_transform [--conversations 5000] [--profile realistic] [--smoke]
"""

from __future__ import annotations

import argparse
import heapq
import io
import logging
import time
from collections.abc import Sequence
from typing import Any

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from bench.common import generated_input, write_result
from schemas.timestamps import ms_to_datetime
from transform.__main__ import REPLAY_CACHE
from transform.errors import ConcurrencyConflict
from transform.normalize import parse_delivery
from transform.ports import CommitResult, Put, StateChange
from transform.replay import ReplayPorts, replay
from transform.service import Delivery, TransformService, parse_batch
from transform.state import ConversationState, Timing


class ObjectStateStore:
    """State kept as objects: the core's cost without any storage encoding (bench only)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[ConversationState, str]] = {}
        self._deadlines: dict[str, int] = {}
        self._due: list[tuple[int, str]] = []
        """Heap of (deadline, id); entries whose deadline has since moved are dropped lazily."""
        self._version = 0

    def load(
        self, conversation_id: str, *, presume_absent: bool = False
    ) -> tuple[ConversationState, str] | None:
        return self._rows.get(conversation_id)

    def commit(self, changes: Sequence[StateChange], now_ms: int) -> CommitResult:
        result = CommitResult()
        for change in changes:
            if isinstance(change, Put):
                try:
                    result.etags[change.state.conversation_id] = self.save(
                        change.state, change.etag, change.deadline_ms
                    )
                except ConcurrencyConflict:
                    result.conflicts.add(change.state.conversation_id)
            else:
                self.delete(change.conversation_id, change.etag)
                result.deleted.add(change.conversation_id)
        return result

    def save(self, state: ConversationState, etag: str | None, deadline_ms: int) -> str:
        current = self._rows.get(state.conversation_id)
        if (current is None) != (etag is None) or (current and current[1] != etag):
            raise ConcurrencyConflict(state.conversation_id)
        self._version += 1
        self._rows[state.conversation_id] = (state, str(self._version))
        if self._deadlines.get(state.conversation_id) != deadline_ms:
            self._deadlines[state.conversation_id] = deadline_ms
            heapq.heappush(self._due, (deadline_ms, state.conversation_id))
        return str(self._version)

    def delete(self, conversation_id: str, etag: str) -> None:
        del self._rows[conversation_id]
        del self._deadlines[conversation_id]

    def due(self, now_ms: int, limit: int) -> list[str]:
        """What has come due, in deadline order, like the real store's index query."""
        found: list[tuple[int, str]] = []
        while self._due and self._due[0][0] <= now_ms and len(found) < limit:
            entry = heapq.heappop(self._due)
            stale = self._deadlines.get(entry[1]) != entry[0]  # moved or deleted since
            if not stale and (not found or found[-1] != entry):  # equal entries pop together
                found.append(entry)
        for entry in found:  # a query does not consume: the caller re-checks and re-saves
            heapq.heappush(self._due, entry)
        return [conversation_id for _, conversation_id in found]


def run_core(lines: list[bytes], batch_size: int = 100) -> int:
    """The replay loop over object state; returns micro-events processed."""
    timing = Timing()
    store = ObjectStateStore()
    clock = ManualClock(ms_to_datetime(0))
    service = TransformService(store, InMemoryRecordSink(), InMemoryDeadLetterSink(), clock, timing)
    events = now = 0
    for start in range(0, len(lines), batch_size):
        batch = parse_batch([Delivery(body) for body in lines[start : start + batch_size]])
        events += batch.micro_events
        if batch.max_timestamp_ms is not None and batch.max_timestamp_ms > now:
            now = batch.max_timestamp_ms
            clock.set(ms_to_datetime(now))
        service.apply(batch)
        # Run the timer every 50 batches, as a timer would.
        if (start // batch_size) % 50 == 0:
            service.tick(limit=1_000_000)
    clock.set(ms_to_datetime(now + timing.idle_ms + 1))
    service.tick(limit=1_000_000)
    return events


def run_replay(lines: list[bytes]) -> int:
    """The shipped offline replay on one worker; returns micro-events processed."""
    ports = ReplayPorts(
        InMemoryStateStore(cache_size=REPLAY_CACHE),  # as `python -m transform replay` keeps it
        InMemoryRecordSink(),
        InMemoryDeadLetterSink(),
        ManualClock(ms_to_datetime(0)),
    )
    counts = replay(io.BytesIO(b"\n".join(lines) + b"\n"), ports)
    return counts.micro_events


def run_parse(lines: list[bytes]) -> int:
    """Normalization alone; returns micro-events produced."""
    return sum(len(parse_delivery(line).events) for line in lines)


def _timed(fn: Any, lines: list[bytes]) -> dict[str, float]:
    started = time.process_time()
    events = fn(lines)
    seconds = time.process_time() - started
    return {"micro_events": events, "cpu_seconds": round(seconds, 3),
            "micro_events_per_second": round(events / seconds) if seconds else 0}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (no figures kept)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # dead-letter warnings are part of the input, not news
    conversations = 50 if args.smoke else args.conversations
    results: dict[str, Any] = {"profile": args.profile, "conversations": conversations}
    for scale in (1,) if args.smoke else (1, 2, 4):
        folder = generated_input(args.profile, conversations * scale)
        lines = (folder / "deliveries.jsonl").read_bytes().splitlines()
        results[f"x{scale}"] = {
            "deliveries": len(lines),
            "core": _timed(run_core, lines),
            "replay": _timed(run_replay, lines),
            "parse": _timed(run_parse, lines),
        }
    results["target_micro_events_per_second"] = 200_000
    if not args.smoke:
        write_result("p1_transform", results)
    else:
        print(results)


if __name__ == "__main__":
    main()
