"""Local Functions hosts (`devstack.host`) as a part of the stack: instance i serves HTTP on the
stack's first host port + i and writes a status file every second."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from devstack import processes
from devstack.errors import PartStartError
from devstack.parts.processes import PartProcesses, PartStatus
from devstack.processes import ProcessSpec
from devstack.settings import LOOPBACK

HOST_STATUS_STALE_S = 5.0
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class HostOptions:
    """What every host of a stack runs with."""

    app_dir: Path
    settings_file: Path
    first_http_port: int
    load_balancing_interval_s: float
    ownership_expiration_s: float


class HostsPart:
    """The hosts of one stack; `environment` gives each host's environment variables."""

    def __init__(
        self,
        parts: PartProcesses,
        options: HostOptions,
        environment: Callable[[], dict[str, str]],
    ) -> None:
        self._parts = parts
        self.options = options
        self._environment = environment

    @staticmethod
    def name(instance: int) -> str:
        return f"host-{instance}"

    def http_port(self, instance: int) -> int:
        return self.options.first_http_port + instance

    def status_file(self, instance: int) -> Path:
        return self._parts.state_dir / f"host-{instance}.status.json"

    def recorded(self) -> list[int]:
        """Instances with a recorded process (running or not)."""
        return [
            int(n.removeprefix("host-"))
            for n in self._parts.recorded_names()
            if n.startswith("host-")
        ]

    def spawn(self, instance: int) -> psutil.Process:
        """Launch host `instance` without waiting for it (see `wait_healthy`)."""
        name = self.name(instance)
        running = self._parts.running(name)
        if running is not None:
            return running
        status_file = self.status_file(instance)
        with contextlib.suppress(FileNotFoundError):
            status_file.unlink()
        http_port = self.http_port(instance)
        options = self.options
        spec = ProcessSpec(
            name=name,
            command=(
                self._parts.python(),
                "-m",
                "devstack.host",
                "--app-dir",
                str(options.app_dir),
                "--instance-id",
                str(instance),
                "--http-port",
                str(http_port),
                "--settings",
                str(options.settings_file),
                "--status-file",
                str(status_file),
                "--load-balancing-interval",
                str(options.load_balancing_interval_s),
                "--ownership-expiration",
                str(options.ownership_expiration_s),
            ),
            cwd=self._parts.root,
            log_file=self._parts.log_file(name),
            ports=((f"host {instance} HTTP", http_port),),
            env=self._environment(),
        )
        processes.ensure_ports_free(name, spec.ports)
        return processes.spawn(spec, self._parts.pid_dir)

    def wait_healthy(self, instance: int) -> float:
        name = self.name(instance)
        process = self._parts.running(name)
        log_file = self._parts.log_file(name)
        if process is None:
            msg = f"{name} is not running. Last lines of {log_file}:\n"
            raise PartStartError(msg + processes.tail(log_file))
        return processes.wait_until_healthy(
            name,
            process,
            lambda: self.healthy(instance),
            log_file=log_file,
            timeout_s=self._parts.startup_timeout_s,
        )

    def start(self, instance: int) -> float:
        """Start host `instance` unless running; seconds to healthy."""
        self.spawn(instance)
        return self.wait_healthy(instance)

    def stop(self, instance: int, *, kill: bool = False) -> None:
        """SIGTERM (checkpoint and release on the way out) or SIGKILL (nothing of the kind)."""
        self._parts.stop(self.name(instance), kill=kill)

    def status_document(self, instance: int) -> dict[str, Any] | None:
        """The JSON status host `instance` writes every second (None before the first)."""
        try:
            document = json.loads(self.status_file(instance).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def healthy(self, instance: int) -> bool:
        process = self._parts.running(self.name(instance))
        status = self.status_document(instance)
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

    def status(self, instance: int) -> PartStatus:
        name = self.name(instance)
        process = self._parts.running(name)
        if process is None:
            return PartStatus(name, None, False, "not running")
        status = self.status_document(instance) or {}
        healthy = self.healthy(instance)
        owned = sorted(
            {
                p
                for listener in status.get("listeners", [])
                for p in listener.get("owned_partitions", [])
            }
        )
        detail = f"{status.get('state', 'starting')}, http {status.get('http_port')}"
        if status.get("http_port_source"):
            detail += f" ({status['http_port_source']})"
        if owned:
            detail += f", partitions {','.join(owned)}"
        if status.get("error"):
            detail += f", error: {status['error']}"
        return PartStatus(name, process.pid, healthy, detail)
