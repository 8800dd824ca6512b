"""Timer triggers: startup run, NCRONTAB schedule, one runner per app, past-due catch-up."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devstack.host.timer_trigger import HOSTS_CONTAINER
from devstack.stack import Stack
from tests.conftest import HostStarter
from tests.devstack.helpers import echo_env, records, wait_until

pytestmark = pytest.mark.stack


def timer_env(records_dir: Path, host_id: str) -> dict[str, str]:
    # A fresh host id per test: timer locks and schedule status are kept per host id.
    return {**echo_env(records_dir), "AzureFunctionsWebHost__hostid": host_id}


def test_timer_runs_on_startup_and_every_two_seconds(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    started = time.monotonic()
    start_hosts(env=timer_env(tmp_path, f"timer-{uuid.uuid4().hex[:8]}"))
    wait_until(lambda: len(records(tmp_path, "timer_tick")) >= 1, 5, "the startup run")
    wait_until(lambda: len(records(tmp_path, "timer_tick")) >= 3, 10, "two scheduled runs")
    elapsed = time.monotonic() - started
    ticks = records(tmp_path, "timer_tick")
    assert not any(t["past_due"] for t in ticks)
    # */2 seconds: at most one run per two seconds, plus the startup run.
    assert len(ticks) <= elapsed / 2 + 2


def test_timer_runs_on_one_instance_only(start_hosts: HostStarter, tmp_path: Path) -> None:
    start_hosts(instances=2, env=timer_env(tmp_path, f"timer-{uuid.uuid4().hex[:8]}"))
    wait_until(lambda: len(records(tmp_path, "timer_tick")) >= 3, 12, "three runs")
    assert len({t["pid"] for t in records(tmp_path, "timer_tick")}) == 1


def test_missed_monitored_occurrence_fires_once_past_due(
    local_stack: Stack, start_hosts: HostStarter, tmp_path: Path
) -> None:
    """useMonitor: the status says an occurrence was due an hour ago, so startup catches up."""
    host_id = f"timer-{uuid.uuid4().hex[:8]}"
    missed = datetime.now(UTC) - timedelta(hours=1)
    status = {
        "Last": (missed - timedelta(hours=1)).isoformat(),
        "Next": missed.isoformat(),
        "LastUpdated": missed.isoformat(),
    }
    blob = f"timers/{host_id}/Host.Functions.timer_hourly/status"
    with BlobServiceClient.from_connection_string(local_stack.storage_connection_string) as service:
        container = service.get_container_client(HOSTS_CONTAINER)
        if not container.exists():
            container.create_container()
        container.upload_blob(blob, json.dumps(status).encode(), overwrite=True)

    start_hosts(env=timer_env(tmp_path, host_id))
    wait_until(lambda: len(records(tmp_path, "timer_hourly")) >= 1, 10, "the catch-up run")
    time.sleep(1)
    (run,) = records(tmp_path, "timer_hourly")
    assert run["past_due"] is True
    assert run["status"]["Next"] == status["Next"]
    with BlobServiceClient.from_connection_string(local_stack.storage_connection_string) as service:
        saved = json.loads(service.get_blob_client(HOSTS_CONTAINER, blob).download_blob().readall())
    assert datetime.fromisoformat(saved["Next"].replace("Z", "+00:00")) > datetime.now(UTC)
