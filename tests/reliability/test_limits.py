"""Memory under a flood of distinct conversations: every per-conversation cache is bounded.

The consumer keeps (state, ETag) of recently seen conversations and the revision of recently
written records, to save storage reads; a flood of conversations that never end must not
grow either past its configured size (STATE_CACHE_SIZE), whatever the flood's size.
"""

from __future__ import annotations

import orjson

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from schemas.timestamps import ms_to_datetime
from tests.ingest.helpers import voice
from transform.service import Delivery, TransformService, parse_batch
from transform.state import Timing

CACHE_SIZE = 200
START_MS = 1_795_000_000_000


def flood(store: InMemoryStateStore, conversations: int, batch: int = 500) -> TransformService:
    """Conversations that start and never end (no disconnect), `batch` per delivery batch."""
    clock = ManualClock(ms_to_datetime(START_MS))
    service = TransformService(
        store, InMemoryRecordSink(), InMemoryDeadLetterSink(), clock, Timing(60_000, 3_600_000)
    )
    for start in range(0, conversations, batch):
        deliveries = [
            Delivery(body=orjson.dumps(voice(f"flood-{n}")), source={"line": n})
            for n in range(start, min(start + batch, conversations))
        ]
        counts = service.apply(parse_batch(deliveries))
        assert counts.applied == 2 * len(deliveries)
    return service


def test_the_state_cache_stays_at_its_size_under_a_flood_of_conversations() -> None:
    store = InMemoryStateStore(cache_size=CACHE_SIZE)
    flood(store, 5_000)
    assert len(store._cache) <= CACHE_SIZE
    assert store.load("flood-0") is not None, "evicted from the cache, not from storage"
    assert store.load("flood-4999") is not None


def test_a_cache_of_zero_keeps_nothing() -> None:
    store = InMemoryStateStore(cache_size=0)
    flood(store, 1_000)
    assert len(store._cache) == 0
