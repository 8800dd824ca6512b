"""Offline replay (SPEC 9): the exact consumer logic over a JSONL file, through the core's ports.

The clock is simulated: before each batch is applied, "now" moves to the latest micro-event
timestamp seen so far in the input, so grace periods run out as the input moves on; at the end
it jumps past every grace and idle period. Same input, same output bytes.

`replay` takes its storage and its clock as ports (`ReplayPorts`): `python -m transform replay`
wires the in-memory twins (`transform/__main__.py`), tests may wire their own.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from schemas.record import DeadLetter
from schemas.timestamps import datetime_to_ms, ms_to_datetime
from transform.keys import safe_key
from transform.media import ALL_MEDIA, MediaFilter
from transform.pii import PiiPolicy
from transform.ports import DeadLetterSink, RecordSink, SettableClock, StateStore
from transform.service import Counts, Delivery, TransformService, parse_batch
from transform.state import Timing

FILE_KEY_CHARS = 200  # file names are at most 255 bytes; keep room for ".json"
DRAIN_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class ReplayPorts:
    """Where a replay keeps its state and writes its output, and its simulated clock."""

    store: StateStore
    records: RecordSink
    dead_letters: DeadLetterSink
    clock: SettableClock


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
    stream: BinaryIO,
    ports: ReplayPorts,
    *,
    batch_size: int = 100,
    timing: Timing | None = None,
    pii: PiiPolicy | None = None,
    media: MediaFilter = ALL_MEDIA,
) -> Counts:
    """Run the consumer logic over a stream of deliveries; the output is in `ports`.

    `pii` is `RECORD_PII` as the consumer applies it (None: numbers kept).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    timing = timing or Timing()
    clock = ports.clock
    service = TransformService(
        ports.store, ports.records, ports.dead_letters, clock, timing, pii=pii, media=media
    )
    counts = Counts()
    now_ms = datetime_to_ms(clock.now())
    for deliveries in _batches(read_deliveries(stream), batch_size):
        batch = parse_batch(deliveries)
        if batch.max_timestamp_ms is not None and batch.max_timestamp_ms > now_ms:
            now_ms = batch.max_timestamp_ms
            clock.set(ms_to_datetime(now_ms))
        counts.add(service.apply(batch))
        counts.add(_drain(service))
    clock.set(ms_to_datetime(now_ms + max(timing.grace_ms, timing.idle_ms) + 1))
    counts.add(_drain(service))
    return counts


def _drain(service: TransformService) -> Counts:
    counts = Counts()
    while True:
        step = service.tick(limit=DRAIN_LIMIT)
        counts.add(step)
        if step.revisions_written + step.purged + step.records_owed == 0:
            return counts


def write_output(
    out_dir: Path, records: Mapping[str, dict[str, Any]], letters: Iterable[DeadLetter]
) -> None:
    """`DIR/conversations/<safe id>.json` (latest revisions) and `DIR/deadletter.jsonl`."""
    conversations_dir = out_dir / "conversations"
    if conversations_dir.exists():
        shutil.rmtree(conversations_dir)
    conversations_dir.mkdir(parents=True)
    for conversation_id in sorted(records):
        record = records[conversation_id]
        path = conversations_dir / f"{safe_key(conversation_id, FILE_KEY_CHARS)}.json"
        path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
    with (out_dir / "deadletter.jsonl").open("wb") as out:
        for letter in letters:
            out.write(letter.model_dump_json().encode() + b"\n")
