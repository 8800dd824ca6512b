"""The local stack a run uses: a healthy `devstack up` stack reused, or a private one.

Either way the run gets a host of its own running the project's `function_app.py` with
settings tuned for a run (short grace, idle timeout and timer period, a webhook secret), so
finalization happens while the run watches:

- private: Azurite, the Event Hubs emulator and the host on free ports, data and logs in the
  run folder, all stopped at the end;
- reused: the running Azurite and emulator; the run's host gets its own state table,
  containers and consumer group (checkpointed at the hub's current end first), so neither the
  stack's earlier data nor its own host's work mixes into the run. Only the run's host stops.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from adapters.settings import DEFAULT_EVENTHUB_NAME as EVENTHUB_NAME
from devstack.errors import DevstackError
from devstack.processes import free_port
from devstack.stack import AZURITE, EVENTHUBS, Stack, StackPorts
from simulator.errors import PipelineError
from simulator.run.idle import PipelineProbe
from simulator.send.http_target import INGEST_ROUTE
from transform.state import seconds_to_ms

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SETTINGS = ROOT / "local.settings.example.json"
REUSE_CONSUMER_GROUP = "cg1"
"""A consumer group the project's emulator config declares besides `$Default`."""
HOST_STARTUP_TIMEOUT_S = 90.0
OWNERSHIP_FRESH_S = 30.0
"""A consumer renews its partitions every few seconds; one renewed this recently is alive."""


@dataclass(frozen=True, slots=True)
class Tuning:
    """The pipeline settings a run sets on its host."""

    grace_s: float = 5.0
    idle_s: float = 20.0
    timer_s: int = 2
    breaker_open_s: float = 2.0
    media_types: str = ""
    """INGEST_MEDIA_TYPES (empty: every media type)."""

    def environment(self) -> dict[str, str]:
        return {
            "GRACE_PERIOD_SECONDS": f"{self.grace_s:g}",
            "IDLE_TIMEOUT_SECONDS": f"{self.idle_s:g}",
            "INGEST_MEDIA_TYPES": self.media_types,
            "TIMER_SCHEDULE": f"*/{self.timer_s} * * * * *",
            # A short open period: the sender's retries (1, 2, 4, 8, 16 s) must find it closed.
            "BREAKER_OPEN_SECONDS": f"{self.breaker_open_s:g}",
            "EVENTHUB_NAME": EVENTHUB_NAME,
        }


@dataclass(frozen=True, slots=True)
class Names:
    """Where the run's pipeline keeps its data."""

    state_table: str = "conversationstate"
    records_container: str = "conversations"
    deadletter_container: str = "deadletter"
    consumer_group: str = "$Default"
    host_id: str | None = None
    """`AzureFunctionsWebHost__hostid`: hosts sharing a storage account and a host id share
    their timers' singleton lock, so the running stack's host would tick for the run's."""

    @classmethod
    def isolated(cls) -> Names:
        tag = uuid.uuid4().hex[:12]
        return cls(
            f"sim{tag}",
            f"sim-{tag}-records",
            f"sim-{tag}-deadletter",
            REUSE_CONSUMER_GROUP,
            f"simulator-{tag}",
        )

    def environment(self) -> dict[str, str]:
        env = {
            "STATE_TABLE_NAME": self.state_table,
            "RECORDS_CONTAINER": self.records_container,
            "DEADLETTER_CONTAINER": self.deadletter_container,
            "EVENTHUB_CONSUMER_GROUP": self.consumer_group,
        }
        if self.host_id is not None:
            env["AzureFunctionsWebHost__hostid"] = self.host_id
        return env


def _services_healthy(stack: Stack) -> bool:
    rows = {row.name: row.healthy for row in stack.status()}
    return bool(rows.get(AZURITE)) and bool(rows.get(EVENTHUBS))


class RunStack:
    """Start, probe, fault and stop the stack of one run."""

    def __init__(
        self, folder: Path, tuning: Tuning, *, reuse_dir: Path | None, signed: bool = True
    ) -> None:
        """`signed` False runs the host without WEBHOOK_SECRET (the EventBridge route's way)."""
        self.folder = folder
        self.tuning = tuning
        self.secret = secrets.token_hex(16) if signed else None
        self.state_dir = folder / "stack"
        running = Stack.load(ROOT, reuse_dir) if reuse_dir is not None else None
        self.names = Names.isolated()
        self.note = ""
        self.reused = running is not None and _services_healthy(running)
        if running is not None and self.reused:
            busy = self._consumers(running)
            if busy:
                self.reused = False
                self.note = (
                    f"the running stack's consumer group {self.names.consumer_group} is in use "
                    f"(partitions {','.join(busy)}: another run?), so this run has its own stack"
                )
        if not self.reused:
            self.names = Names()
        env = {**tuning.environment(), **self.names.environment()}
        if self.secret is not None:
            env["WEBHOOK_SECRET"] = self.secret
        if running is not None and self.reused:
            self.services = running
            ports = replace(running.ports, http=free_port())
            self.hosts = Stack(
                ROOT,
                ports=ports,
                state_dir=self.state_dir,
                settings_file=EXAMPLE_SETTINGS,
                host_env=env,
                startup_timeout_s=HOST_STARTUP_TIMEOUT_S,
            )
        else:
            self.hosts = self.services = Stack(
                ROOT,
                ports=StackPorts.free(instances=1),
                state_dir=self.state_dir,
                settings_file=EXAMPLE_SETTINGS,
                host_env=env,
                startup_timeout_s=HOST_STARTUP_TIMEOUT_S,
            )

    def _consumers(self, running: Stack) -> list[str]:
        """Partitions of the run's consumer group another host owns right now."""
        with PipelineProbe.connect(
            storage_connection_string=running.storage_connection_string,
            eventhub_connection_string=running.eventhub_connection_string,
            eventhub_name=EVENTHUB_NAME,
            consumer_group=self.names.consumer_group,
            state_table=self.names.state_table,
            horizon_ms=0,
        ) as probe:
            return probe.owned(OWNERSHIP_FRESH_S)

    # ------------------------------------------------------------------ life cycle
    def describe(self) -> str:
        if self.reused:
            return (
                f"reused the running stack ({self.services.state_dir}); run data in table "
                f"{self.names.state_table}, containers {self.names.records_container} and "
                f"{self.names.deadletter_container}, consumer group {self.names.consumer_group}"
            )
        own = f"private stack in {self.state_dir} (stopped at the end)"
        return f"{own}; {self.note}" if self.note else own

    def start(self) -> None:
        try:
            if self.reused:
                with self.probe() as probe:
                    probe.seed_checkpoints()
                self.hosts.start_host(0)
            else:
                self.hosts.start()
        except DevstackError as e:
            self.stop()
            msg = f"the local stack did not start: {e}"
            raise PipelineError(msg) from e

    def stop(self) -> None:
        """Stop what the run started (everything, or only its host on a reused stack)."""
        self.hosts.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def ingest_url(self) -> str:
        return self.hosts.http_base_url(0) + INGEST_ROUTE

    @property
    def storage_connection_string(self) -> str:
        return self.services.storage_connection_string

    @property
    def eventhub_connection_string(self) -> str:
        return self.services.eventhub_connection_string

    @property
    def host_log(self) -> Path:
        return self.hosts.log_file(self.hosts.host_name(0))

    def settings(self) -> Mapping[str, str]:
        """App settings that reach the run's pipeline (for the Blob source)."""
        return {
            "StateStorage": self.storage_connection_string,
            "EventHubConnection": self.eventhub_connection_string,
            **self.names.environment(),
        }

    def probe(self) -> PipelineProbe:
        """A probe of this stack's pipeline (the caller closes it)."""
        t = self.tuning
        return PipelineProbe.connect(
            storage_connection_string=self.storage_connection_string,
            eventhub_connection_string=self.eventhub_connection_string,
            eventhub_name=EVENTHUB_NAME,
            consumer_group=self.names.consumer_group,
            state_table=self.names.state_table,
            horizon_ms=seconds_to_ms(t.grace_s + t.idle_s),
        )

    # ------------------------------------------------------------------ faults (StackControl)
    def kill_host(self) -> None:
        self.hosts.kill_host(0)

    def start_host(self) -> None:
        self.hosts.start_host(0)

    def stop_eventhubs(self) -> None:
        self.services.stop_eventhubs()

    def start_eventhubs(self) -> None:
        self.services.start_eventhubs()

    def stop_azurite(self) -> None:
        self.services.stop_azurite()

    def start_azurite(self) -> None:
        self.services.start_azurite()
