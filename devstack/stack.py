"""The local stack as a Python API: Azurite, the Event Hubs emulator and N Functions hosts.

Used by `python -m devstack`, the test fixtures and the simulator's fault injection:

    stack = Stack(root, ports=StackPorts.free(), app_dir=root / "tests/apps/echo")
    stack.start()
    stack.kill_host(0); stack.start_host(0)
    stack.stop_eventhubs(); stack.start_eventhubs()
    stack.stop()
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

from devstack import processes
from devstack.azurite import (
    AzuritePorts,
    azurite_command,
    azurite_healthy,
    ensure_azurite_installed,
)
from devstack.errors import DevstackError, PartStartError
from devstack.processes import ProcessSpec
from devstack.settings import (
    DEFAULT_AMQP_PORT,
    DEFAULT_BLOB_PORT,
    DEFAULT_EVENTHUBS_HEALTH_PORT,
    DEFAULT_HTTP_PORT,
    DEFAULT_QUEUE_PORT,
    DEFAULT_TABLE_PORT,
    LOCAL_SETTINGS_FILE,
    LOOPBACK,
    dev_storage_connection_string,
    ensure_local_settings,
    eventhubs_emulator_connection_string,
)

logger = logging.getLogger(__name__)

AZURITE = "azurite"
EVENTHUBS = "eventhubs"
STATE_FILE = "stack.json"
EVENTHUBS_CONFIG = Path("devstack") / "eventhubs.config.json"
HOST_STATUS_STALE_S = 5.0
PROBE_TIMEOUT_S = 2.0


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


@dataclass(frozen=True)
class PartStatus:
    """One row of `devstack status`."""

    name: str
    pid: int | None
    healthy: bool
    detail: str


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
    """Start, stop, probe and fault-inject the parts of the local stack."""

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

    # ------------------------------------------------------------------ paths and strings

    @property
    def ports(self) -> StackPorts:
        return self.options.ports

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def storage_connection_string(self) -> str:
        ports = self.ports
        return dev_storage_connection_string(
            blob_port=ports.blob, queue_port=ports.queue, table_port=ports.table
        )

    @property
    def eventhub_connection_string(self) -> str:
        return eventhubs_emulator_connection_string(self.ports.amqp)

    def http_base_url(self, instance: int = 0) -> str:
        return f"http://{LOOPBACK}:{self.ports.host_http(instance)}"

    def log_file(self, part: str) -> Path:
        return self.logs_dir / f"{part}.log"

    def host_status_file(self, instance: int) -> Path:
        return self.state_dir / f"host-{instance}.status.json"

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
            for instance in range(self.options.instances):
                self.spawn_host(instance)
            for instance in range(self.options.instances):
                timings[f"host-{instance}"] = self.wait_host_healthy(instance)
        return timings

    def stop(self) -> None:
        """Stop every recorded part: hosts first (they checkpoint on the way out)."""
        names = processes.recorded_names(self.pid_dir)
        hosts = [n for n in names if n.startswith("host-")]
        with ThreadPoolExecutor(max_workers=max(len(hosts), 1)) as pool:
            list(pool.map(self._stop_part, hosts))
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(self._stop_part, (EVENTHUBS, AZURITE)))

    def status(self) -> list[PartStatus]:
        """Health of every part this stack is configured to run."""
        rows = [self._service_status(AZURITE), self._service_status(EVENTHUBS)]
        instances = set(range(self.options.instances))
        instances.update(
            int(n.removeprefix("host-"))
            for n in processes.recorded_names(self.pid_dir)
            if n.startswith("host-")
        )
        rows.extend(self._host_row(i) for i in sorted(instances))
        return rows

    def healthy(self) -> bool:
        return all(row.healthy for row in self.status())

    # ------------------------------------------------------------------ Azurite

    def start_azurite(self) -> float:
        """Start Azurite (data in `.devstack/azurite`) unless running; seconds to healthy."""
        if self._running(AZURITE) is not None and azurite_healthy(self.ports.azurite):
            return 0.0
        ensure_azurite_installed(self.root)
        data_dir = self.state_dir / "azurite"
        data_dir.mkdir(parents=True, exist_ok=True)
        ports = self.ports
        spec = ProcessSpec(
            name=AZURITE,
            command=azurite_command(self.root, data_dir, ports.azurite),
            cwd=self.root,
            log_file=self.log_file(AZURITE),
            ports=(
                ("Azurite Blob", ports.blob),
                ("Azurite Queue", ports.queue),
                ("Azurite Table", ports.table),
            ),
        )
        return self._start_part(spec, lambda: azurite_healthy(ports.azurite))

    def stop_azurite(self, *, kill: bool = False) -> None:
        self._stop_part(AZURITE, kill=kill)

    # ------------------------------------------------------------------ Event Hubs emulator

    def eventhubs_healthy(self) -> bool:
        try:
            answer = httpx.get(
                f"http://{LOOPBACK}:{self.ports.eventhubs_health}/health", timeout=PROBE_TIMEOUT_S
            )
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def start_eventhubs(self) -> float:
        """Start the Event Hubs emulator unless running; seconds to healthy."""
        if self._running(EVENTHUBS) is not None and self.eventhubs_healthy():
            return 0.0
        config = self.eventhubs_config
        if not config.exists():
            msg = f"Event Hubs emulator config {config} is missing"
            raise PartStartError(msg)
        data_dir = self.state_dir / "eventhubs"
        data_dir.mkdir(parents=True, exist_ok=True)
        ports = self.ports
        spec = ProcessSpec(
            name=EVENTHUBS,
            command=(
                sys.executable,
                "-m",
                "devstack.eventhubs",
                "--config",
                str(config),
                "--host",
                LOOPBACK,
                "--port",
                str(ports.amqp),
                "--health-port",
                str(ports.eventhubs_health),
                "--data-dir",
                str(data_dir),
            ),
            cwd=self.root,
            log_file=self.log_file(EVENTHUBS),
            ports=(("Event Hubs AMQP", ports.amqp), ("Event Hubs health", ports.eventhubs_health)),
            env=self._python_env(),
        )
        return self._start_part(spec, self.eventhubs_healthy)

    def stop_eventhubs(self, *, kill: bool = False) -> None:
        self._stop_part(EVENTHUBS, kill=kill)

    # ------------------------------------------------------------------ hosts

    def host_name(self, instance: int) -> str:
        return f"host-{instance}"

    def host_environment(self) -> dict[str, str]:
        """Environment of a host: connection settings pointing at this stack's ports.

        Environment variables win over local.settings.json (as with `func start`), so a stack
        on non-standard ports still reaches its own Azurite and emulator. On the standard ports
        local.settings.json is left in charge.
        """
        env = self._python_env()
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
        name = self.host_name(instance)
        running = self._running(name)
        if running is not None:
            return running
        status_file = self.host_status_file(instance)
        with contextlib.suppress(FileNotFoundError):
            status_file.unlink()
        http_port = self.ports.host_http(instance)
        spec = ProcessSpec(
            name=name,
            command=(
                sys.executable,
                "-m",
                "devstack.host",
                "--app-dir",
                str(self.options.app_dir),
                "--instance-id",
                str(instance),
                "--http-port",
                str(http_port),
                "--settings",
                str(self.settings_file),
                "--status-file",
                str(status_file),
                "--load-balancing-interval",
                str(self.options.load_balancing_interval_s),
                "--ownership-expiration",
                str(self.options.ownership_expiration_s),
            ),
            cwd=self.root,
            log_file=self.log_file(name),
            ports=((f"host {instance} HTTP", http_port),),
            env=self.host_environment(),
        )
        processes.ensure_ports_free(name, spec.ports)
        return processes.spawn(spec, self.pid_dir)

    def wait_host_healthy(self, instance: int) -> float:
        name = self.host_name(instance)
        process = self._running(name)
        if process is None:
            msg = f"{name} is not running. Last lines of {self.log_file(name)}:\n"
            raise PartStartError(msg + processes.tail(self.log_file(name)))
        return processes.wait_until_healthy(
            name,
            process,
            lambda: self.host_healthy(instance),
            log_file=self.log_file(name),
            timeout_s=self.startup_timeout_s,
        )

    def start_host(self, instance: int = 0) -> float:
        """Start host `instance` unless running; seconds to healthy."""
        self.spawn_host(instance)
        return self.wait_host_healthy(instance)

    def stop_host(self, instance: int = 0) -> None:
        """SIGTERM: the host finishes its in-flight batch, checkpoints and releases partitions."""
        self._stop_part(self.host_name(instance))

    def kill_host(self, instance: int = 0) -> None:
        """SIGKILL: no checkpoint, no ownership release (partitions lapse after expiration)."""
        self._stop_part(self.host_name(instance), kill=True)

    def restart_host(self, instance: int = 0, *, kill: bool = False) -> float:
        if kill:
            self.kill_host(instance)
        else:
            self.stop_host(instance)
        return self.start_host(instance)

    def host_status(self, instance: int = 0) -> dict[str, Any] | None:
        """The JSON status host `instance` writes every second (None before the first)."""
        try:
            document = json.loads(self.host_status_file(instance).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def host_healthy(self, instance: int) -> bool:
        process = self._running(self.host_name(instance))
        status = self.host_status(instance)
        if process is None or status is None:
            return False
        if status.get("pid") != process.pid or status.get("state") != "running":
            return False
        updated = datetime.fromisoformat(status["updated_at"])
        if (datetime.now(UTC) - updated).total_seconds() > HOST_STATUS_STALE_S:
            return False
        port = status.get("http_port")
        if port is None:
            return True
        try:
            answer = httpx.get(
                f"http://{LOOPBACK}:{port}/admin/host/status", timeout=PROBE_TIMEOUT_S
            )
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def wait_for(self, condition: Any, timeout_s: float, interval_s: float = 0.2) -> bool:
        """Poll `condition()` until true or timeout (a convenience for tests and fault runs)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(interval_s)
        return bool(condition())

    # ------------------------------------------------------------------ internals

    def _python_env(self) -> dict[str, str]:
        env = dict(os.environ)
        existing = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(self.root) + (os.pathsep + existing if existing else "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _save_state(self) -> None:
        state = self.state_dir / STATE_FILE
        state.write_text(json.dumps(self.options.to_json(), indent=1), encoding="utf-8")

    def _running(self, name: str) -> psutil.Process | None:
        return processes.recorded_process(self.pid_dir, name)

    def _start_part(self, spec: ProcessSpec, is_healthy: Any) -> float:
        processes.ensure_ports_free(spec.name, spec.ports)
        process = processes.spawn(spec, self.pid_dir)
        try:
            return processes.wait_until_healthy(
                spec.name,
                process,
                is_healthy,
                log_file=spec.log_file,
                timeout_s=self.startup_timeout_s,
            )
        except PartStartError:
            processes.stop_process(process, spec.name, timeout_s=5)
            processes.forget(self.pid_dir, spec.name)
            raise

    def _stop_part(self, name: str, *, kill: bool = False) -> None:
        process = self._running(name)
        if process is not None:
            if kill:
                processes.kill_process(process, name)
            else:
                processes.stop_process(process, name)
        processes.forget(self.pid_dir, name)

    def _service_status(self, name: str) -> PartStatus:
        process = self._running(name)
        ports = self.ports
        if name == AZURITE:
            healthy = azurite_healthy(ports.azurite)
            detail = f"blob {ports.blob}, queue {ports.queue}, table {ports.table}"
        else:
            healthy = self.eventhubs_healthy()
            detail = f"amqp {ports.amqp}, health {ports.eventhubs_health}"
        if process is None:
            healthy = False
            detail = "not running"
        return PartStatus(name, process.pid if process else None, healthy, detail)

    def _host_row(self, instance: int) -> PartStatus:
        name = self.host_name(instance)
        process = self._running(name)
        if process is None:
            return PartStatus(name, None, False, "not running")
        status = self.host_status(instance) or {}
        healthy = self.host_healthy(instance)
        owned = sorted(
            {
                p
                for listener in status.get("listeners", [])
                for p in listener.get("owned_partitions", [])
            }
        )
        detail = f"{status.get('state', 'starting')}, http {status.get('http_port')}"
        if owned:
            detail += f", partitions {','.join(owned)}"
        if status.get("error"):
            detail += f", error: {status['error']}"
        return PartStatus(name, process.pid, healthy, detail)

    def iter_logs(self) -> Iterator[Path]:
        yield from sorted(self.logs_dir.glob("*.log"))

    def with_options(self, **changes: Any) -> Stack:
        """A copy of this stack with some options changed (same root and state dir)."""
        stack = Stack(self.root, state_dir=self.state_dir, startup_timeout_s=self.startup_timeout_s)
        stack.options = replace(self.options, **changes)
        return stack
