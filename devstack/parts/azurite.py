"""Azurite (Blob, Queue, Table emulator) from the project's pinned npm install: one part."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from devstack.errors import PartStartError
from devstack.parts.processes import PartProcesses, ServicePart
from devstack.processes import ProcessSpec
from devstack.settings import DEV_STORAGE_ACCOUNT, LOOPBACK, dev_storage_connection_string

logger = logging.getLogger(__name__)

AZURITE_SCRIPT = Path("node_modules") / "azurite" / "dist" / "src" / "azurite.js"
# Longer than the SDK clients' pooled-connection idle time, so Azurite does not close a
# connection the client is about to reuse (which surfaces as ServerDisconnectedError).
KEEP_ALIVE_TIMEOUT_S = 120
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class AzuritePorts:
    blob: int
    queue: int
    table: int


def node_executable() -> str:
    """Path of `node`, or a clear error saying how to get it."""
    node = shutil.which("node")
    if node is None:
        msg = "node is not on PATH; install Node.js 18+ (Azurite runs on it)"
        raise PartStartError(msg)
    return node


def ensure_azurite_installed(root: Path) -> None:
    """Run `npm ci` (the pinned package-lock) when Azurite is not installed yet."""
    if (root / AZURITE_SCRIPT).exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        msg = f"{root / AZURITE_SCRIPT} is missing and npm is not on PATH; install Node.js and npm"
        raise PartStartError(msg)
    logger.info("installing azurite with npm ci root=%s", root)
    completed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0 or not (root / AZURITE_SCRIPT).exists():
        msg = f"npm ci failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
        raise PartStartError(msg)


def azurite_command(root: Path, data_dir: Path, ports: AzuritePorts) -> tuple[str, ...]:
    """The command line: loopback only, no telemetry, lenient API versions, quiet."""
    return (
        node_executable(),
        str(root / AZURITE_SCRIPT),
        "--blobHost",
        LOOPBACK,
        "--blobPort",
        str(ports.blob),
        "--queueHost",
        LOOPBACK,
        "--queuePort",
        str(ports.queue),
        "--tableHost",
        LOOPBACK,
        "--tablePort",
        str(ports.table),
        "--blobKeepAliveTimeout",
        str(KEEP_ALIVE_TIMEOUT_S),
        "--queueKeepAliveTimeout",
        str(KEEP_ALIVE_TIMEOUT_S),
        "--tableKeepAliveTimeout",
        str(KEEP_ALIVE_TIMEOUT_S),
        "--location",
        str(data_dir),
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    )


def azurite_healthy(ports: AzuritePorts) -> bool:
    """Real SDK calls on Blob and Table, an HTTP answer from Queue."""
    connection = dev_storage_connection_string(
        blob_port=ports.blob, queue_port=ports.queue, table_port=ports.table
    )
    options: dict[str, Any] = {
        "retry_total": 0,
        "connection_timeout": PROBE_TIMEOUT_S,
        "read_timeout": PROBE_TIMEOUT_S,
    }
    try:
        with BlobServiceClient.from_connection_string(connection, **options) as blobs:
            next(iter(blobs.list_containers(results_per_page=1)), None)
        with TableServiceClient.from_connection_string(connection, **options) as tables:
            next(iter(tables.list_tables(results_per_page=1)), None)
        # Any HTTP answer (even 403 without a signature) means the Queue service is up.
        httpx.get(
            f"http://{LOOPBACK}:{ports.queue}/{DEV_STORAGE_ACCOUNT}?comp=list",
            timeout=PROBE_TIMEOUT_S,
        )
    except (AzureError, httpx.HTTPError, OSError):
        return False
    return True


class AzuritePart(ServicePart):
    """Azurite of one stack: data in `<state>/azurite`, on the stack's three storage ports."""

    NAME = "azurite"

    def __init__(self, parts: PartProcesses, ports: AzuritePorts) -> None:
        self._parts = parts
        self.ports = ports

    @property
    def connection_string(self) -> str:
        """The explicit development-storage connection string on this Azurite's ports."""
        return dev_storage_connection_string(
            blob_port=self.ports.blob, queue_port=self.ports.queue, table_port=self.ports.table
        )

    def healthy(self) -> bool:
        return azurite_healthy(self.ports)

    def start(self) -> float:
        """Start Azurite unless running; seconds to healthy."""
        if self._parts.running(self.NAME) is not None and self.healthy():
            return 0.0
        root = self._parts.root
        ensure_azurite_installed(root)
        data_dir = self._parts.state_dir / "azurite"
        data_dir.mkdir(parents=True, exist_ok=True)
        spec = ProcessSpec(
            name=self.NAME,
            command=azurite_command(root, data_dir, self.ports),
            cwd=root,
            log_file=self._parts.log_file(self.NAME),
            ports=(
                ("Azurite Blob", self.ports.blob),
                ("Azurite Queue", self.ports.queue),
                ("Azurite Table", self.ports.table),
            ),
        )
        return self._parts.start(spec, self.healthy)

    def detail(self) -> str:
        ports = self.ports
        return f"blob {ports.blob}, queue {ports.queue}, table {ports.table}"
