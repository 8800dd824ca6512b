"""The project's own function_app.py runs on the local host (indexing, settings, routes)."""

from __future__ import annotations

import httpx
import pytest

from devstack.stack import Stack

pytestmark = pytest.mark.stack


def test_project_app_is_served(project_host: Stack) -> None:
    base = project_host.http_base_url()
    status = httpx.get(f"{base}/admin/host/status").json()
    triggers = {f["name"]: f["trigger"] for f in status["functions"]}
    assert triggers["ingest_events"] == "httpTrigger"
    assert triggers["transform"] == "eventHubTrigger"
    assert triggers["transform_timer"] == "timerTrigger"
    health = httpx.get(f"{base}/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    # SPEC 6: never 500; a body that is not JSON is a 400 and a dead letter.
    rejected = httpx.post(
        f"{base}/api/v1/genesys/events",
        content=b"not json",
        headers={"content-type": "application/json"},
    )
    assert rejected.status_code == 400
