"""`python -m devstack up | status | down` end to end, on shifted ports beside anything else."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.processes import port_is_free
from devstack.settings import LOOPBACK
from devstack.stack import StackPorts
from tests.conftest import APPS, ROOT

pytestmark = pytest.mark.stack


def free_offset() -> int:
    """A shift of the standard ports where every shifted port is free."""
    base = StackPorts()
    ports = (base.blob, base.queue, base.table, base.amqp, base.eventhubs_health, base.http)
    for _ in range(200):
        offset = random.randrange(20000, 40000)
        if all(port_is_free(p + offset) for p in ports):
            return offset
    raise AssertionError("no free port offset found")


def devstack(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_up_status_down(tmp_path: Path) -> None:
    offset = free_offset()
    common = ("--state-dir", str(tmp_path / "state"))
    up_arguments = (*common, "--app-dir", str(APPS / "minimal"), "--port-offset", str(offset))
    http = f"http://{LOOPBACK}:{7071 + offset}"
    try:
        # A taken port fails `up` with a message naming it, and leaves nothing running.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.bind((LOOPBACK, 5672 + offset))
            holder.listen()
            blocked = devstack("up", *up_arguments)
        assert blocked.returncode == 1
        assert f"port {5672 + offset} (Event Hubs AMQP)" in blocked.stderr
        assert devstack("status", *common).returncode == 1

        started = time.monotonic()
        up = devstack("up", *up_arguments)
        took = time.monotonic() - started
        assert up.returncode == 0, up.stdout + up.stderr
        assert took < 60, f"up took {took:.1f}s"
        assert httpx.get(f"{http}/api/ping").text == "pong"

        status = devstack("status", *common)
        assert status.returncode == 0, status.stdout
        for part in ("azurite", "eventhubs", "host-0"):
            assert part in status.stdout
        assert "unhealthy" not in status.stdout
    finally:
        down = devstack("down", *common)
    assert down.returncode == 0, down.stderr
    assert devstack("status", *common).returncode == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{http}/api/ping")
    logs = {p.name for p in (tmp_path / "state" / "logs").iterdir()}
    assert {"azurite.log", "eventhubs.log", "host-0.log"} <= logs
