"""What every part of the stack shares: its processes, recorded under the stack's state folder."""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from devstack import processes
from devstack.errors import PartStartError
from devstack.processes import ProcessSpec


@dataclass(frozen=True)
class PartStatus:
    """One row of `devstack status`."""

    name: str
    pid: int | None
    healthy: bool
    detail: str


class PartProcesses:
    """Start, find and stop the recorded processes of a stack's parts."""

    def __init__(self, root: Path, state_dir: Path, startup_timeout_s: float) -> None:
        self.root = root
        self.state_dir = state_dir
        self.startup_timeout_s = startup_timeout_s

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    def log_file(self, part: str) -> Path:
        return self.logs_dir / f"{part}.log"

    def running(self, name: str) -> psutil.Process | None:
        return processes.recorded_process(self.pid_dir, name)

    def recorded_names(self) -> list[str]:
        return processes.recorded_names(self.pid_dir)

    def python_env(self) -> dict[str, str]:
        """The environment of a Python part: this project importable, output unbuffered."""
        env = dict(os.environ)
        existing = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(self.root) + (os.pathsep + existing if existing else "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @staticmethod
    def python() -> str:
        return sys.executable

    def start(self, spec: ProcessSpec, is_healthy: Callable[[], bool]) -> float:
        """Spawn a part and wait until healthy; seconds it took (stopped again if it failed)."""
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

    def stop(self, name: str, *, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) a recorded part and forget it."""
        process = self.running(name)
        if process is not None:
            if kill:
                processes.kill_process(process, name)
            else:
                processes.stop_process(process, name)
        processes.forget(self.pid_dir, name)


class ServicePart(ABC):
    """A part that runs one process of its own (Azurite, the emulator): stop and status."""

    NAME: str
    _parts: PartProcesses

    @abstractmethod
    def healthy(self) -> bool:
        """Whether the service answers."""

    @abstractmethod
    def detail(self) -> str:
        """Where it listens, for `devstack status`."""

    def stop(self, *, kill: bool = False) -> None:
        self._parts.stop(self.NAME, kill=kill)

    def status(self) -> PartStatus:
        process = self._parts.running(self.NAME)
        if process is None:
            return PartStatus(self.NAME, None, False, "not running")
        return PartStatus(self.NAME, process.pid, self.healthy(), self.detail())
