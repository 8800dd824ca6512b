"""The offline replay wired to the in-memory twins, as `python -m transform replay` wires it."""

from __future__ import annotations

import io
from typing import BinaryIO

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from schemas.timestamps import ms_to_datetime
from transform.media import ALL_MEDIA, MediaFilter
from transform.replay import ReplayPorts, Shard, replay
from transform.service import Counts
from transform.state import Timing


def replay_in_memory(
    stream: BinaryIO,
    *,
    batch_size: int = 100,
    timing: Timing | None = None,
    records: InMemoryRecordSink | None = None,
    media: MediaFilter = ALL_MEDIA,
    store: InMemoryStateStore | None = None,
    shards: int = 1,
) -> tuple[InMemoryRecordSink, InMemoryDeadLetterSink, Counts]:
    """Replay `stream`; the records, the dead letters and the counts.

    With `shards` > 1 the replay runs once per share of the conversations, one after the other,
    each on a store and a clock of its own (as `--workers` runs them in processes of their own)
    and all into the same sinks; the counts are summed.
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    if store is not None and shards > 1:
        raise ValueError("a sharded replay makes a store per share")
    records = InMemoryRecordSink() if records is None else records
    dead_letters = InMemoryDeadLetterSink()
    shares = [None] if shards == 1 else [Shard(index, shards) for index in range(shards)]
    data = stream.read()
    counts = Counts()
    for shard in shares:
        share_store = InMemoryStateStore() if store is None else store
        ports = ReplayPorts(share_store, records, dead_letters, ManualClock(ms_to_datetime(0)))
        counts.add(
            replay(
                io.BytesIO(data),
                ports,
                batch_size=batch_size,
                timing=timing,
                media=media,
                shard=shard,
            )
        )
    return records, dead_letters, counts
