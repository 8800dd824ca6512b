"""The offline replay wired to the in-memory twins, as `python -m transform replay` wires it."""

from __future__ import annotations

from typing import BinaryIO

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from schemas.timestamps import ms_to_datetime
from transform.media import ALL_MEDIA, MediaFilter
from transform.replay import ReplayPorts, replay
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
) -> tuple[InMemoryRecordSink, InMemoryDeadLetterSink, Counts]:
    """Replay `stream`; the records, the dead letters and the counts."""
    records = InMemoryRecordSink() if records is None else records
    dead_letters = InMemoryDeadLetterSink()
    store = InMemoryStateStore() if store is None else store
    ports = ReplayPorts(store, records, dead_letters, ManualClock(ms_to_datetime(0)))
    counts = replay(stream, ports, batch_size=batch_size, timing=timing, media=media)
    return records, dead_letters, counts
