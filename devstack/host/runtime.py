"""The local Functions host: load the app into the worker runtime, run its triggers, shut down.

The host's part only: app settings, host.json, HTTP routing, the Event Hubs and timer triggers
with their batching, checkpoints, locks and retries. Indexing, binding validation, decoding and
invocation are the worker runtime's (`devstack.host.worker`), as on Azure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from devstack.errors import HostError, SettingError
from devstack.host.app_settings import is_disabled
from devstack.host.connections import StorageConnection, resolve_storage_connection
from devstack.host.eventhub_trigger import (
    EventHubTriggerListener,
    LoadBalancing,
    eventhub_trigger_config,
)
from devstack.host.host_config import HostConfig, load_host_config
from devstack.host.http_port import HttpPortChoice, choose_http_port
from devstack.host.http_server import HttpTriggerServer, build_http_routes
from devstack.host.indexing import (
    EVENTHUB_TRIGGER,
    HTTP_TRIGGER,
    TIMER_TRIGGER,
    FunctionDefinition,
    function_definition,
)
from devstack.host.invocation import FunctionInvoker
from devstack.host.timer_trigger import TimerTriggerListener, timer_trigger_config
from devstack.host.worker import WorkerRuntime
from devstack.settings import LOOPBACK, LocalSettings, apply_to_environment, load_local_settings

logger = logging.getLogger(__name__)

HOST_STORAGE_SETTING = "AzureWebJobsStorage"
STATUS_INTERVAL_S = 1.0


class Listener(Protocol):
    """A trigger listener the host starts and stops."""

    @property
    def function_name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self, grace_s: float) -> None: ...

    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HostOptions:
    """How to run one host instance."""

    app_dir: Path
    instance_id: int = 0
    http_port: int | None = None
    """`--http-port` (None: Host.LocalHttpPort of the settings file, else the default)."""
    serve_http: bool = True
    """False: `--no-http`, no HTTP server at all."""
    settings_file: Path | None = None
    status_file: Path | None = None
    host_id: str = "devstack-host"
    script_file: str = "function_app.py"
    load_balancing: LoadBalancing = field(default_factory=LoadBalancing)
    shutdown_grace_s: float = 10.0


class FunctionsHost:
    """One instance of the local Functions host."""

    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.state = "starting"
        self.error: str | None = None
        self.started_at = datetime.now(UTC)
        self.functions: list[FunctionDefinition] = []
        self.listeners: list[Listener] = []
        self.http: HttpTriggerServer | None = None
        self.http_port: HttpPortChoice | None = None
        """Chosen once the settings file is read."""
        self._stop = asyncio.Event()
        # The runtime's thread pool honours PYTHON_THREADPOOL_THREAD_COUNT, as on Azure.
        self.worker = WorkerRuntime(options.app_dir, script_file=options.script_file)

    def request_stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        """What `devstack status` and tests read (also served at /admin/host/status)."""
        return {
            "id": self.options.host_id,
            "instance": self.options.instance_id,
            "pid": os.getpid(),
            "state": self.state,
            "error": self.error,
            "app_dir": str(self.options.app_dir),
            "http_port": self.http.port if self.http else None,
            "http_port_source": self.http_port.source if self.http_port else None,
            "functions": [{"name": f.name, "trigger": f.trigger["type"]} for f in self.functions],
            "listeners": [listener.status() for listener in self.listeners],
            "started_at": self.started_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
        }

    def write_status(self) -> None:
        path = self.options.status_file
        if path is None:
            return
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(self.status(), indent=1), encoding="utf-8")
        temporary.replace(path)

    def _load_settings(self) -> LocalSettings:
        settings_file = self.options.settings_file or self.options.app_dir / "local.settings.json"
        local = load_local_settings(settings_file)
        skipped = apply_to_environment(local.values)
        for name in skipped:
            logger.info("setting taken from the environment, not local settings name=%s", name)
        return local

    def _choose_http_port(self, local: LocalSettings) -> HttpPortChoice:
        choice = choose_http_port(
            self.options.http_port, serve_http=self.options.serve_http, local=local
        )
        logger.info("http port=%s from=%s", choice.port, choice.source)
        return choice

    def _host_storage(self) -> StorageConnection:
        try:
            return resolve_storage_connection(os.environ, HOST_STORAGE_SETTING)
        except SettingError as e:
            msg = f"{e}; the host keeps Event Hubs checkpoints and timer locks there"
            raise SettingError(msg) from e

    def _build(self, config: HostConfig) -> None:
        invokers = {
            f.name: FunctionInvoker(f, self.worker, config.function_timeout) for f in self.functions
        }
        needs_storage = any(f.trigger_type != HTTP_TRIGGER for f in self.functions)
        storage = self._host_storage() if needs_storage else None
        for definition in self.functions:
            invoker = invokers[definition.name]
            if definition.trigger_type == EVENTHUB_TRIGGER:
                assert storage is not None
                self.listeners.append(
                    EventHubTriggerListener(
                        invoker,
                        eventhub_trigger_config(definition, os.environ),
                        config.event_hubs,
                        storage,
                        self.options.load_balancing,
                    )
                )
            elif definition.trigger_type == TIMER_TRIGGER:
                assert storage is not None
                self.listeners.append(
                    TimerTriggerListener(
                        invoker,
                        timer_trigger_config(definition, os.environ),
                        storage,
                        self.options.host_id,
                    )
                )
        http_invokers = [invokers[f.name] for f in self.functions if f.trigger_type == HTTP_TRIGGER]
        port = self.http_port.port if self.http_port else None
        if port is not None:
            self.http = HttpTriggerServer(
                build_http_routes(http_invokers, config.route_prefix),
                host=LOOPBACK,
                port=port,
                admin_status=self.status,
            )
        elif http_invokers:
            logger.info("http disabled; http functions not served count=%s", len(http_invokers))

    async def _start_http(self) -> None:
        if self.http is None or self.http_port is None:
            return
        try:
            await self.http.start()
        except OSError as e:
            # As `func start` refuses a taken port, naming where the number came from.
            msg = (
                f"cannot serve HTTP on {LOOPBACK}:{self.http.port} (from {self.http_port.source}): "
                f"{e.strerror or e}. Stop what holds it, or choose another port with --http-port "
                "or Host.LocalHttpPort"
            )
            raise HostError(msg) from e

    async def _report_status(self) -> None:
        while True:
            self.write_status()
            await asyncio.sleep(STATUS_INTERVAL_S)

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit code says whether startup worked."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        reporter = asyncio.create_task(self._report_status())
        try:
            self.http_port = self._choose_http_port(self._load_settings())
            config = load_host_config(self.options.app_dir)
            metadata = await self.worker.load()
            indexed = [function_definition(m) for m in metadata]
            disabled = {f.name for f in indexed if is_disabled(f.name, os.environ)}
            self.functions = [f for f in indexed if f.name not in disabled]
            for name in sorted(disabled):
                logger.info("function disabled by app setting name=%s", name)
            self._build(config)
            await self._start_http()
            for listener in self.listeners:
                await listener.start()
        except (HostError, OSError) as e:
            self.state = "error"
            self.error = str(e)
            logger.error("host failed to start instance=%s error=%s", self.options.instance_id, e)
            reporter.cancel()
            self.write_status()
            await self._shutdown()
            return 1
        self.state = "running"
        logger.info(
            "host running instance=%s pid=%s functions=%s http_port=%s http_port_from=%s",
            self.options.instance_id,
            os.getpid(),
            ",".join(f.name for f in self.functions),
            self.http.port if self.http else None,
            self.http_port.source if self.http_port else None,
        )
        self.write_status()
        await self._stop.wait()
        self.state = "stopping"
        self.write_status()
        logger.info("host stopping instance=%s", self.options.instance_id)
        await self._shutdown()
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
        self.state = "stopped"
        self.write_status()
        logger.info("host stopped instance=%s", self.options.instance_id)
        return 0

    async def _shutdown(self) -> None:
        grace = self.options.shutdown_grace_s
        await asyncio.gather(
            *(listener.stop(grace) for listener in self.listeners), return_exceptions=True
        )
        if self.http is not None:
            await self.http.stop()
        self.worker.stop()
