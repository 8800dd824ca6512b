"""The local stack as a Python API: Azurite, the Event Hubs emulator and N Functions hosts.

One part per service (`devstack.parts`: Azurite, the Event Hubs emulator, the hosts), composed
here. Used by `python -m devstack`, the test fixtures and the simulator's fault injection:

    stack = Stack(root, ports=StackPorts.free(), app_dir=root / "tests/apps/echo")
    stack.start()
    stack.kill_host(0); stack.start_host(0)
    stack.stop_eventhubs(); stack.start_eventhubs()
    stack.stop()
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from devstack import processes
from devstack.errors import DevstackError
from devstack.parts.azurite import AzuritePart, AzuritePorts
from devstack.parts.eventhubs import EventHubsPart
from devstack.parts.hosts import HostOptions, HostsPart
from devstack.parts.processes import PartProcesses, PartStatus
from devstack.settings import (
    DEFAULT_AMQP_PORT,
    DEFAULT_BLOB_PORT,
    DEFAULT_EVENTHUBS_HEALTH_PORT,
    DEFAULT_HTTP_PORT,
    DEFAULT_QUEUE_PORT,
    DEFAULT_TABLE_PORT,
    LOCAL_SETTINGS_FILE,
    LOOPBACK,
    ensure_local_settings,
)

logger = logging.getLogger(__name__)

AZURITE = AzuritePart.NAME
EVENTHUBS = EventHubsPart.NAME
STATE_FILE = "stack.json"
EVENTHUBS_CONFIG = Path("devstack") / "eventhubs.config.json"

__all__ = ["AZURITE", "EVENTHUBS", "PartStatus", "Stack", "StackOptions", "StackPorts"]


@dataclass(frozen=True)
class StackPorts:
    """Loopback ports of every part; host instance i serves HTTP on `http + i`."""

    blob: int = DEFAULT_BLOB_PORT
    queue: int = DEFAULT_QUEUE_PORT
    table: int = DEFAULT_TABLE_PORT
    amqp: int = DEFAULT_AMQP_PORT
    eventhubs_health: int = DEFAULT_EVENTHUBS_HEALTH_PORT
    http: int = DEFAULT_HTTP_PORT

    @classmethod
    def free(cls, instances: int = 4) -> StackPorts:
        """Ports that are free now (tests run beside anything else on the machine)."""
        chosen: set[int] = set()

        def pick() -> int:
            while True:
                port = processes.free_port()
                if port not in chosen:
                    chosen.add(port)
                    return port

        http = pick()
        while not all(processes.port_is_free(http + i) for i in range(instances)):
            http = pick()
        chosen.update(http + i for i in range(instances))
        return cls(
            blob=pick(),
            queue=pick(),
            table=pick(),
            amqp=pick(),
            eventhubs_health=pick(),
            http=http,
        )

    @property
    def azurite(self) -> AzuritePorts:
        return AzuritePorts(blob=self.blob, queue=self.queue, table=self.table)

    def host_http(self, instance: int) -> int:
        return self.http + instance


@dataclass
class StackOptions:
    """What the stack runs; saved in `.devstack/stack.json` so `status`/`down` find it again."""

    app_dir: Path
    instances: int = 1
    ports: StackPorts = field(default_factory=StackPorts)
    eventhubs_config: Path | None = None
    settings_file: Path | None = None
    load_balancing_interval_s: float = 2.0
    ownership_expiration_s: float = 10.0
    host_env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        for key in ("app_dir", "eventhubs_config", "settings_file"):
            if document[key] is not None:
                document[key] = str(document[key])
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> StackOptions:
        def path(value: Any) -> Path | None:
            return Path(value) if value else None

        return cls(
            app_dir=Path(document["app_dir"]),
            instances=int(document.get("instances", 1)),
            ports=StackPorts(**document.get("ports", {})),
            eventhubs_config=path(document.get("eventhubs_config")),
            settings_file=path(document.get("settings_file")),
            load_balancing_interval_s=float(document.get("load_balancing_interval_s", 2.0)),
            ownership_expiration_s=float(document.get("ownership_expiration_s", 10.0)),
            host_env=dict(document.get("host_env", {})),
        )


class Stack:
    """Start, stop, probe and fault-inject the parts of the local stack (composed below)."""

    def __init__(
        self,
        root: Path,
        *,
        ports: StackPorts | None = None,
        app_dir: Path | None = None,
        instances: int = 1,
        state_dir: Path | None = None,
        eventhubs_config: Path | None = None,
        settings_file: Path | None = None,
        host_env: Mapping[str, str] | None = None,
        load_balancing_interval_s: float = 2.0,
        ownership_expiration_s: float = 10.0,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.root = root.resolve()
        self.state_dir = (state_dir or self.root / ".devstack").resolve()
        self.options = StackOptions(
            app_dir=(app_dir or self.root).resolve(),
            instances=instances,
            ports=ports or StackPorts(),
            eventhubs_config=eventhubs_config,
            settings_file=settings_file,
            load_balancing_interval_s=load_balancing_interval_s,
            ownership_expiration_s=ownership_expiration_s,
            host_env=dict(host_env or {}),
        )
        self.startup_timeout_s = startup_timeout_s

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, root: Path, state_dir: Path | None = None) -> Stack:
        """The stack recorded by a previous `up` (defaults when nothing was recorded)."""
        stack = cls(root, state_dir=state_dir)
        state = stack.state_dir / STATE_FILE
        if state.exists():
            stack.options = StackOptions.from_json(json.loads(state.read_text(encoding="utf-8")))
        return stack

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ the parts
    # Built on each use from the current options (`load` and `with_options` replace them).

    @property
    def parts(self) -> PartProcesses:
        return PartProcesses(self.root, self.state_dir, self.startup_timeout_s)

    @property
    def azurite(self) -> AzuritePart:
        return AzuritePart(self.parts, self.ports.azurite)

    @property
    def eventhubs(self) -> EventHubsPart:
        ports = self.ports
        return EventHubsPart(
            self.parts,
            amqp_port=ports.amqp,
            health_port=ports.eventhubs_health,
            config=self.eventhubs_config,
        )

    @property
    def hosts(self) -> HostsPart:
        options = HostOptions(
            app_dir=self.options.app_dir,
            settings_file=self.settings_file,
            first_http_port=self.ports.http,
            load_balancing_interval_s=self.options.load_balancing_interval_s,
            ownership_expiration_s=self.options.ownership_expiration_s,
        )
        return HostsPart(self.parts, options, self.host_environment)

    # ------------------------------------------------------------------ paths and strings

    @property
    def ports(self) -> StackPorts:
        return self.options.ports

    @property
    def logs_dir(self) -> Path:
        return self.parts.logs_dir

    @property
    def storage_connection_string(self) -> str:
        return self.azurite.connection_string

    @property
    def eventhub_connection_string(self) -> str:
        return self.eventhubs.connection_string

    def http_base_url(self, instance: int = 0) -> str:
        return f"http://{LOOPBACK}:{self.ports.host_http(instance)}"

    def log_file(self, part: str) -> Path:
        return self.parts.log_file(part)

    @property
    def eventhubs_config(self) -> Path:
        return self.options.eventhubs_config or self.root / EVENTHUBS_CONFIG

    @property
    def settings_file(self) -> Path:
        return self.options.settings_file or self.root / LOCAL_SETTINGS_FILE

    # ------------------------------------------------------------------ whole stack

    def start(self, *, host: bool = True) -> dict[str, float]:
        """Start whatever is not running, wait until healthy; returns seconds per part."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._save_state()
        timings: dict[str, float] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            services = [pool.submit(self.start_azurite), pool.submit(self.start_eventhubs)]
            errors = []
            for future, name in zip(services, (AZURITE, EVENTHUBS), strict=True):
                try:
                    timings[name] = future.result()
                except DevstackError as e:
                    errors.append(e)
            if errors:
                raise errors[0]
        if host and self.options.instances:
            if self.options.settings_file is None:
                ensure_local_settings(self.root)
            hosts = self.hosts
            for instance in range(self.options.instances):
                hosts.spawn(instance)
            for instance in range(self.options.instances):
                timings[f"host-{instance}"] = hosts.wait_healthy(instance)
        return timings

    def stop(self) -> None:
        """Stop every recorded part: hosts first (they checkpoint on the way out)."""
        hosts = self.hosts
        recorded = hosts.recorded()
        with ThreadPoolExecutor(max_workers=max(len(recorded), 1)) as pool:
            list(pool.map(hosts.stop, recorded))
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda stop: stop(), (self.eventhubs.stop, self.azurite.stop)))

    def status(self) -> list[PartStatus]:
        """Health of every part this stack is configured to run."""
        rows = [self.azurite.status(), self.eventhubs.status()]
        hosts = self.hosts
        instances = set(range(self.options.instances)) | set(hosts.recorded())
        rows.extend(hosts.status(i) for i in sorted(instances))
        return rows

    def healthy(self) -> bool:
        return all(row.healthy for row in self.status())

    # ------------------------------------------------------------------ Azurite

    def start_azurite(self) -> float:
        """Start Azurite (data in `.devstack/azurite`) unless running; seconds to healthy."""
        return self.azurite.start()

    def stop_azurite(self, *, kill: bool = False) -> None:
        self.azurite.stop(kill=kill)

    # ------------------------------------------------------------------ Event Hubs emulator

    def eventhubs_healthy(self) -> bool:
        return self.eventhubs.healthy()

    def start_eventhubs(self) -> float:
        """Start the Event Hubs emulator unless running; seconds to healthy."""
        return self.eventhubs.start()

    def stop_eventhubs(self, *, kill: bool = False) -> None:
        self.eventhubs.stop(kill=kill)

    # ------------------------------------------------------------------ hosts

    def host_name(self, instance: int) -> str:
        return HostsPart.name(instance)

    def host_environment(self) -> dict[str, str]:
        """Environment of a host: connection settings pointing at this stack's ports.

        Environment variables win over local.settings.json (as with `func start`), so a stack
        on non-standard ports still reaches its own Azurite and emulator. On the standard ports
        local.settings.json is left in charge.
        """
        env = self.parts.python_env()
        if self.ports != StackPorts():
            env.update(
                {
                    "AzureWebJobsStorage": self.storage_connection_string,
                    "StateStorage": self.storage_connection_string,
                    "EventHubConnection": self.eventhub_connection_string,
                }
            )
        env.update(self.options.host_env)
        return env

    def spawn_host(self, instance: int) -> psutil.Process:
        """Launch host `instance` without waiting for it (see wait_host_healthy)."""
        return self.hosts.spawn(instance)

    def wait_host_healthy(self, instance: int) -> float:
        return self.hosts.wait_healthy(instance)

    def start_host(self, instance: int = 0) -> float:
        """Start host `instance` unless running; seconds to healthy."""
        return self.hosts.start(instance)

    def stop_host(self, instance: int = 0) -> None:
        """SIGTERM: the host finishes its in-flight batch, checkpoints and releases partitions."""
        self.hosts.stop(instance)

    def kill_host(self, instance: int = 0) -> None:
        """SIGKILL: no checkpoint, no ownership release (partitions lapse after expiration)."""
        self.hosts.stop(instance, kill=True)

    def restart_host(self, instance: int = 0, *, kill: bool = False) -> float:
        if kill:
            self.kill_host(instance)
        else:
            self.stop_host(instance)
        return self.start_host(instance)

    def host_status(self, instance: int = 0) -> dict[str, Any] | None:
        """The JSON status host `instance` writes every second (None before the first)."""
        return self.hosts.status_document(instance)

    def host_healthy(self, instance: int) -> bool:
        return self.hosts.healthy(instance)

    def wait_for(self, condition: Any, timeout_s: float, interval_s: float = 0.2) -> bool:
        """Poll `condition()` until true or timeout (a convenience for tests and fault runs)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(interval_s)
        return bool(condition())

    # ------------------------------------------------------------------ internals

    def _save_state(self) -> None:
        state = self.state_dir / STATE_FILE
        state.write_text(json.dumps(self.options.to_json(), indent=1), encoding="utf-8")

    def with_options(self, **changes: Any) -> Stack:
        """A copy of this stack with some options changed (same root and state dir)."""
        stack = Stack(self.root, state_dir=self.state_dir, startup_timeout_s=self.startup_timeout_s)
        stack.options = replace(self.options, **changes)
        return stack
