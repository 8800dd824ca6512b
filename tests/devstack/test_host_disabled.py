"""`AzureWebJobs.<name>.Disabled`: the local host neither serves nor triggers the function."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import HostStarter
from tests.devstack.helpers import echo_env

pytestmark = pytest.mark.stack


def test_a_function_disabled_by_app_setting_is_not_served_or_triggered(
    start_hosts: HostStarter, tmp_path_factory: pytest.TempPathFactory
) -> None:
    records = tmp_path_factory.mktemp("disabled-records")
    env = {
        **echo_env(records),
        "AzureWebJobs.http_echo.Disabled": "true",
        "AzureWebJobs_timer_tick_Disabled": "1",
        "AzureWebJobs.http_fail.Disabled": "false",
    }
    base = start_hosts(env=env).http_base_url()
    assert httpx.get(base + "/api/echo/x").status_code == 404
    assert httpx.get(base + "/api/fail").status_code == 500  # still served
    names = {f["name"] for f in httpx.get(base + "/admin/host/status").json()["functions"]}
    assert "http_echo" not in names and "timer_tick" not in names
    assert {"http_fail", "record_batch"} <= names
