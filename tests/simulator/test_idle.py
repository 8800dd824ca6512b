"""Is the pipeline idle? The probe on the adapters' in-memory twins: lag, due index, seeding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.checkpoints import Checkpoint, HubAddress, InMemoryCheckpointStore
from adapters.memory import InMemoryStateStore
from adapters.partitions import InMemoryHub
from adapters.state_reader import ShardedStateReader
from simulator.run.idle import SETTLED_MARGIN_MS, PipelineProbe
from tests.contract.states import make_state
from transform.ports import Put

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW_MS = int(T0.timestamp() * 1000)
ADDRESS = HubAddress("localhost:5673", "genesys-events", "cg1")
HORIZON_MS = 5_000


def probe(
    hub: InMemoryHub, checkpoints: InMemoryCheckpointStore, states: InMemoryStateStore
) -> PipelineProbe:
    reader = ShardedStateReader(states.another_process(cache_size=0), "memory")
    return PipelineProbe(
        hub, checkpoints, ADDRESS, reader, horizon_ms=HORIZON_MS, wall_clock=lambda: NOW_MS / 1000
    )


def test_idle_only_when_the_hub_is_drained_and_nothing_is_due() -> None:
    hub, checkpoints, states = InMemoryHub(), InMemoryCheckpointStore(), InMemoryStateStore()
    for n in range(3):
        hub.append("0", T0 + timedelta(seconds=n))
    hub.events["1"] = []
    look = probe(hub, checkpoints, states).look()
    assert (look.backlog, look.pending, look.idle) == ({"0": 3, "1": 0}, 0, False)

    checkpoints.write(ADDRESS, Checkpoint("0", 2, "2000"))
    open_until = NOW_MS + HORIZON_MS + SETTLED_MARGIN_MS  # due within the horizon: pending
    states.commit([Put(make_state("open"), None, open_until)], NOW_MS)
    look = probe(hub, checkpoints, states).look()
    assert (look.backlog, look.pending, look.idle) == ({"0": 0, "1": 0}, 1, False)
    assert look.describe() == "0 events behind, 1 conversations pending"

    loaded = states.load("open")
    assert loaded is not None
    purge_at = NOW_MS + 7 * 24 * 3_600_000  # finalized and written: waiting for its purge
    states.commit([Put(loaded[0], loaded[1], purge_at)], NOW_MS)
    assert probe(hub, checkpoints, states).look().idle


def test_seeding_starts_a_consumer_group_at_the_hub_end_and_owners_are_seen() -> None:
    hub, checkpoints = InMemoryHub(), InMemoryCheckpointStore(now=T0)
    for n in range(4):
        hub.append("1", T0 + timedelta(seconds=n))
    hub.events["0"] = []
    seen = probe(hub, checkpoints, InMemoryStateStore())
    assert seen.seed_checkpoints() == 1, "an empty partition has no end to start at"
    assert checkpoints.checkpoints(ADDRESS)["1"].sequence_number == 3
    assert seen.look().backlog == {"0": 0, "1": 0}
    checkpoints.claim(ADDRESS, "1", "host-b")
    assert seen.owned(30.0) == ["1"]
