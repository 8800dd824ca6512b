"""Is the pipeline idle? The hub drained, and nothing waiting to be finalized.

- Drained: on every partition the consumer group's checkpoint (the blob the Functions host
  writes in `azure-webjobs-eventhub`) has reached the last enqueued sequence number: the
  consumer lag of `adapters.lag` is zero.
- Settled: no conversation has work due within grace + idle (and a margin): the state's due
  index (`adapters.state_reader`) holds none. A conversation written and up to date waits for
  its purge, days away.

Everything is read through the adapters' ports; `run` polls this after the send, and
`seed_checkpoints` starts a consumer group at the end of the hub, so a run on a shared hub sees
only its own events. A probe from `connect` owns the readers it built and closes them (`close`, or
`with`); one given its readers leaves them to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import AzureError
from azure.eventhub.exceptions import EventHubError

from adapters import lag
from adapters.checkpoints import Checkpoint, CheckpointStore, HubAddress, live_owners
from adapters.errors import Unreachable
from adapters.owned import ClosesOwned
from adapters.partitions import HubReader
from adapters.settings import HubSettings, TransformSettings
from adapters.state_reader import StateReader
from adapters.wiring import checkpoint_store, hub_address, hub_reader, state_reader
from transform.errors import StorageUnavailable

SETTLED_MARGIN_MS = 60_000
PENDING_LIMIT = 1_000_000
"""Counting stops here: far more than a run holds."""


@dataclass(frozen=True, slots=True)
class IdleState:
    """One look at the pipeline."""

    backlog: dict[str, int]
    """Partition → events enqueued but not yet checkpointed."""
    pending: int
    """Conversations not yet finalized, or owing a record write."""
    error: str | None = None

    @property
    def idle(self) -> bool:
        return self.error is None and self.pending == 0 and not any(self.backlog.values())

    def describe(self) -> str:
        if self.error is not None:
            return f"cannot look: {self.error}"
        behind = sum(self.backlog.values())
        return f"{behind} events behind, {self.pending} conversations pending"


class PipelineProbe(ClosesOwned):
    """Reads the hub, the checkpoints and the due index; writes checkpoints only to seed them."""

    def __init__(
        self,
        hub: HubReader,
        checkpoints: CheckpointStore,
        address: HubAddress,
        states: StateReader,
        *,
        horizon_ms: int,
        wall_clock: Callable[[], float] = time.time,
        owned: ExitStack | None = None,
    ) -> None:
        """`owned`: the readers this probe closes (None: the caller's)."""
        self.hub = hub
        self.checkpoints = checkpoints
        self.address = address
        self.states = states
        self.horizon_ms = horizon_ms + SETTLED_MARGIN_MS
        self._wall_clock = wall_clock
        self._owned = owned or ExitStack()

    @classmethod
    def connect(
        cls,
        *,
        storage_connection_string: str,
        eventhub_connection_string: str,
        eventhub_name: str,
        consumer_group: str,
        state_table: str,
        horizon_ms: int,
    ) -> PipelineProbe:
        """A probe of a local stack's pipeline, from its connection strings; it closes the
        readers it is built with."""
        env = {
            "EventHubConnection": eventhub_connection_string,
            "EVENTHUB_NAME": eventhub_name,
            "EVENTHUB_CONSUMER_GROUP": consumer_group,
            "AzureWebJobsStorage": storage_connection_string,
            "StateStorage": storage_connection_string,
            "STATE_TABLE_NAME": state_table,
        }
        hub = HubSettings.from_env(env)
        states = TransformSettings.from_env(env)
        with ExitStack() as opened:  # closes what it opened if building the rest fails
            checkpoints = opened.enter_context(checkpoint_store(hub))
            reader = opened.enter_context(state_reader(states))
            return cls(
                hub_reader(hub),
                checkpoints,
                hub_address(hub),
                reader,
                horizon_ms=horizon_ms,
                owned=opened.pop_all(),
            )

    def owned(self, within_s: float) -> list[str]:
        """Partitions some consumer of this group has claimed or renewed in the last seconds."""
        now = datetime.fromtimestamp(self._wall_clock(), UTC)
        held = live_owners(
            self.checkpoints.ownership(self.address), now, timedelta(seconds=within_s)
        )
        return sorted(o.partition for o in held)

    def look(self) -> IdleState:
        try:
            rows = lag.measure(self.hub, self.checkpoints, self.address)
            now_ms = int(self._wall_clock() * 1000)
            pending = self.states.open_conversations(now_ms + self.horizon_ms, PENDING_LIMIT)
        except (Unreachable, StorageUnavailable, AzureError, EventHubError, OSError) as e:
            return IdleState({}, 0, f"{type(e).__name__}: {str(e)[:160]}")
        return IdleState({row.partition: row.lag for row in rows}, pending)

    def wait(
        self,
        timeout_s: float,
        *,
        poll_s: float = 1.0,
        confirmations: int = 2,
        on_look: Callable[[IdleState], None] | None = None,
    ) -> IdleState:
        """Poll until idle `confirmations` times in a row, or until `timeout_s` has passed."""
        deadline = time.monotonic() + timeout_s
        streak = 0
        while True:
            state = self.look()
            if on_look is not None:
                on_look(state)
            streak = streak + 1 if state.idle else 0
            if streak >= confirmations or time.monotonic() >= deadline:
                return state
            time.sleep(poll_s)

    def seed_checkpoints(self) -> int:
        """Checkpoint the consumer group at the hub's current end; returns partitions set."""
        seeded = 0
        for info in self.hub.partitions():
            if info.is_empty:
                continue
            end = Checkpoint(
                info.partition, info.last_enqueued_sequence_number, info.last_enqueued_offset
            )
            self.checkpoints.write(self.address, end)
            seeded += 1
        return seeded
