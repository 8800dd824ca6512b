"""Offline replay (SPEC 9): the exact consumer logic over a JSONL file, with no Azure at all.

The clock is simulated: before each batch is applied, "now" moves to the latest micro-event
timestamp seen so far in the input, so grace periods run out as the input moves on; at the end
it jumps past every grace and idle period. Same input, same output bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from schemas.timestamps import ms_to_datetime
from transform.keys import safe_key
from transform.service import Counts, Delivery, TransformService, parse_batch
from transform.state import Timing

FILE_KEY_CHARS = 200  # file names are at most 255 bytes; keep room for ".json"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay produced."""

    counts: Counts
    records: int
    dead_letters: int


def read_deliveries(stream: BinaryIO) -> Iterator[Delivery]:
    """One delivery per line; the line number (1-based) is its dead-letter source."""
    for number, line in enumerate(stream, start=1):
        body = line.rstrip(b"\r\n")
        yield Delivery(body=body, source={"line": number})


def _batches(deliveries: Iterator[Delivery], size: int) -> Iterator[list[Delivery]]:
    batch: list[Delivery] = []
    for delivery in deliveries:
        batch.append(delivery)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def replay(
    stream: BinaryIO, *, batch_size: int = 100, timing: Timing | None = None
) -> tuple[InMemoryRecordSink, InMemoryDeadLetterSink, Counts]:
    """Run the consumer logic over a stream of deliveries with in-memory storage."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    timing = timing or Timing()
    store = InMemoryStateStore()
    records = InMemoryRecordSink()
    dead_letters = InMemoryDeadLetterSink()
    clock = ManualClock(ms_to_datetime(0))
    service = TransformService(store, records, dead_letters, clock, timing)
    counts = Counts()
    now_ms = 0
    for deliveries in _batches(read_deliveries(stream), batch_size):
        batch = parse_batch(deliveries)
        if batch.max_timestamp_ms is not None and batch.max_timestamp_ms > now_ms:
            now_ms = batch.max_timestamp_ms
            clock.set(ms_to_datetime(now_ms))
        counts.add(service.apply(batch))
        counts.add(_drain(service))
    clock.set(ms_to_datetime(now_ms + max(timing.grace_ms, timing.idle_ms) + 1))
    counts.add(_drain(service))
    return records, dead_letters, counts


def _drain(service: TransformService) -> Counts:
    counts = Counts()
    while True:
        step = service.tick(limit=10_000)
        counts.add(step)
        if step.revisions_written + step.purged + step.records_owed == 0:
            return counts


def replay_file(
    input_path: Path, out_dir: Path, *, batch_size: int = 100, timing: Timing | None = None
) -> ReplayResult:
    """Replay a JSONL file and write `conversations/<safe id>.json` and `deadletter.jsonl`."""
    with input_path.open("rb") as stream:
        records, dead_letters, counts = replay(stream, batch_size=batch_size, timing=timing)
    conversations_dir = out_dir / "conversations"
    if conversations_dir.exists():
        shutil.rmtree(conversations_dir)
    conversations_dir.mkdir(parents=True)
    for conversation_id in sorted(records.records):
        record = records.records[conversation_id]
        path = conversations_dir / f"{safe_key(conversation_id, FILE_KEY_CHARS)}.json"
        path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
    with (out_dir / "deadletter.jsonl").open("wb") as out:
        for letter in dead_letters.letters.values():
            out.write(letter.model_dump_json().encode() + b"\n")
    return ReplayResult(counts, len(records.records), len(dead_letters.letters))
