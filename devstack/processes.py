"""Background processes of the stack: spawn with a log file and pid file, probe, stop, kill."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from devstack.errors import PartStartError, PortInUseError
from devstack.settings import LOOPBACK

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one part of the stack."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    log_file: Path
    ports: tuple[tuple[str, int], ...] = ()
    env: Mapping[str, str] | None = None


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether `host:port` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_owner(port: int) -> str | None:
    """`name (pid N)` of the process listening on `port`, when the OS lets us see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        return None
    for connection in connections:
        if connection.laddr and connection.laddr.port == port and connection.status == "LISTEN":
            if connection.pid is None:
                return None
            try:
                return f"{psutil.Process(connection.pid).name()} (pid {connection.pid})"
            except psutil.Error:
                return f"pid {connection.pid}"
    return None


def ensure_ports_free(part: str, ports: Iterable[tuple[str, int]]) -> None:
    """Raise PortInUseError naming the port, its use and (if visible) who holds it."""
    for label, port in ports:
        if port_is_free(port):
            continue
        owner = port_owner(port)
        holder = f" by {owner}" if owner else ""
        msg = (
            f"cannot start {part}: port {port} ({label}) on {LOOPBACK} is already in use{holder}. "
            "Stop that process, or run `python -m devstack down` if it is a stack left running."
        )
        raise PortInUseError(msg)


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - 64 * 1024, 0))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_file(pid_dir: Path, name: str) -> Path:
    return pid_dir / f"{name}.pid.json"


def spawn(spec: ProcessSpec, pid_dir: Path) -> psutil.Process:
    """Start the process in its own session, appending stdout and stderr to its log."""
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_dir.mkdir(parents=True, exist_ok=True)
    with spec.log_file.open("ab") as log:
        banner = (
            f"--- {datetime.now(UTC).isoformat()} starting {spec.name}: {' '.join(spec.command)}\n"
        )
        log.write(banner.encode("utf-8"))
        log.flush()
        popen = subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env=dict(spec.env) if spec.env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives `devstack up` returning; not hit by its Ctrl-C
        )
    process = psutil.Process(popen.pid)
    record = {
        "name": spec.name,
        "pid": popen.pid,
        "create_time": process.create_time(),
        "command": list(spec.command),
        "log_file": str(spec.log_file),
    }
    _pid_file(pid_dir, spec.name).write_text(json.dumps(record), encoding="utf-8")
    # Keep the Popen object alive so the child is reaped when it exits (no zombies).
    _children[popen.pid] = popen
    logger.info("started part=%s pid=%s", spec.name, popen.pid)
    return process


_children: dict[int, subprocess.Popen[bytes]] = {}


def recorded_process(pid_dir: Path, name: str) -> psutil.Process | None:
    """The live process recorded for `name`, or None (a recycled pid is not ours)."""
    path = _pid_file(pid_dir, name)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        process = psutil.Process(int(record["pid"]))
        if abs(process.create_time() - float(record["create_time"])) > 0.5:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except (FileNotFoundError, ValueError, KeyError, psutil.Error):
        return None
    return process


def forget(pid_dir: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _pid_file(pid_dir, name).unlink()


def recorded_names(pid_dir: Path) -> list[str]:
    return sorted(p.name.removesuffix(".pid.json") for p in pid_dir.glob("*.pid.json"))


def _reap(pid: int) -> None:
    popen = _children.pop(pid, None)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=1)


def stop_process(process: psutil.Process, name: str, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process (and its children), SIGKILL whatever is left after the timeout."""
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        _reap(process.pid)
        return
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout_s)
    for member in alive:
        logger.warning("killing part=%s pid=%s after %ss", name, member.pid, timeout_s)
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=5)
    _reap(process.pid)
    logger.info("stopped part=%s pid=%s", name, process.pid)


def kill_process(process: psutil.Process, name: str) -> None:
    """SIGKILL the process and its children at once (fault injection: no cleanup at all)."""
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        _reap(process.pid)
        return
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(family, timeout=5)
    _reap(process.pid)
    logger.info("killed part=%s pid=%s", name, process.pid)


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_until_healthy(
    name: str,
    process: psutil.Process,
    is_healthy: Callable[[], bool],
    *,
    log_file: Path,
    timeout_s: float,
    interval_s: float = 0.1,
) -> float:
    """Poll until healthy; raise PartStartError with the log tail if it dies or times out."""
    started = time.monotonic()
    while True:
        if not _alive(process):
            _reap(process.pid)
            msg = f"{name} exited while starting. Last lines of {log_file}:\n{tail(log_file)}"
            raise PartStartError(msg)
        if is_healthy():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            msg = (
                f"{name} was not healthy after {timeout_s:.0f}s. "
                f"Last lines of {log_file}:\n{tail(log_file)}"
            )
            raise PartStartError(msg)
        time.sleep(interval_s)
