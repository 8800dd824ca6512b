"""Offline replay (SPEC 9): the exact consumer logic over a JSONL file, through the core's ports.

The clock is simulated: before each batch is applied, "now" moves to the latest micro-event
timestamp seen so far in the input, so grace periods run out as the input moves on; at the end
it jumps past every grace and idle period. Same input, same output bytes.

`replay` takes its storage and its clock as ports (`ReplayPorts`): `python -m transform replay`
wires the in-memory twins (`transform/__main__.py`), tests may wire their own.

A replay may be split into disjoint shares of the conversations (`Shard`), as the consumer is
split into partitions on Azure: each share reads and parses the whole input, so it moves its
clock exactly as a whole replay does, and applies only its own conversations. The shares'
outputs together are the whole replay's output, byte for byte; share 0 also keeps what belongs
to no conversation (rejected input, the batch-level counts).
"""

from __future__ import annotations

import itertools
import shutil
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from schemas.record import DeadLetter
from schemas.timestamps import datetime_to_ms, ms_to_datetime
from transform.keys import safe_key
from transform.media import ALL_MEDIA, MediaFilter
from transform.pii import PiiPolicy
from transform.ports import DeadLetterSink, RecordSink, SettableClock, StateStore
from transform.service import Counts, Delivery, ParsedBatch, TransformService, parse_batch
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


@dataclass(frozen=True, slots=True)
class Shard:
    """Share `index` of `count` disjoint shares of the conversations, by CRC-32 of the id."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: needs 0 <= index < count")

    def owns(self, conversation_id: str) -> bool:
        """Whether the conversation is this share's (the same answer in every process)."""
        key = conversation_id.encode("utf-8", "surrogatepass")
        return zlib.crc32(key) % self.count == self.index

    def share(self, batch: ParsedBatch) -> ParsedBatch:
        """This share's part of a parsed batch; its clock reading (`max_timestamp_ms`) is the
        whole batch's. Share 0 keeps the rejections and the delivery counts."""
        touches = {key: touch for key, touch in batch.touches.items() if self.owns(key)}
        if self.index == 0:
            return replace(batch, touches=touches)
        return ParsedBatch(max_timestamp_ms=batch.max_timestamp_ms, touches=touches)


def read_deliveries(stream: BinaryIO) -> Iterator[Delivery]:
    """One delivery per line; the line number (1-based) is its dead-letter source."""
    for number, line in enumerate(stream, start=1):
        body = line.rstrip(b"\r\n")
        yield Delivery(body=body, source={"line": number})


def replay(
    stream: BinaryIO,
    ports: ReplayPorts,
    *,
    batch_size: int = 100,
    timing: Timing | None = None,
    pii: PiiPolicy | None = None,
    media: MediaFilter = ALL_MEDIA,
    shard: Shard | None = None,
) -> Counts:
    """Run the consumer logic over a stream of deliveries; the output is in `ports`.

    `pii` is `RECORD_PII` as the consumer applies it (None: numbers kept); with `shard`, only
    that share of the conversations is applied (see the module's docstring).
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
    for deliveries in itertools.batched(read_deliveries(stream), batch_size, strict=False):
        batch = parse_batch(deliveries)
        if shard is not None:
            batch = shard.share(batch)
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


def prepare_output(out_dir: Path) -> None:
    """An empty `DIR/conversations/` (whatever an earlier replay left there goes)."""
    conversations_dir = out_dir / "conversations"
    if conversations_dir.exists():
        shutil.rmtree(conversations_dir)
    conversations_dir.mkdir(parents=True)


def write_records(out_dir: Path, records: Mapping[str, dict[str, Any]]) -> None:
    """`DIR/conversations/<safe id>.json`: the latest revision of each record."""
    conversations_dir = out_dir / "conversations"
    for conversation_id in sorted(records):
        record = records[conversation_id]
        path = conversations_dir / f"{safe_key(conversation_id, FILE_KEY_CHARS)}.json"
        path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")


def write_dead_letters(out_dir: Path, letters: Iterable[DeadLetter]) -> None:
    """`DIR/deadletter.jsonl`, in input-line order (a line's own letters in the order made).

    One line per id, as a dead-letter sink keeps them (a later letter replaces an earlier one):
    shares of a replay may each make the letter of one delivery (a delivery of conversations in
    two shares that both outgrow the state store), where one replay's sink keeps it once.
    """
    by_id = {letter.id: letter for letter in letters}
    in_order = sorted(by_id.values(), key=lambda letter: letter.source.line or 0)
    with (out_dir / "deadletter.jsonl").open("wb") as out:
        for letter in in_order:
            out.write(letter.model_dump_json().encode() + b"\n")
