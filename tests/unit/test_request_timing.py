"""Telling storage round trips apart by kind (adapters.request_timing); the hooks themselves
run against Azurite in the P5 smoke test, which checks they time what the adapters count."""

from __future__ import annotations

import pytest

from adapters.request_timing import RequestTime, RequestTimer, request_kind

ACCOUNT = "http://127.0.0.1:10002/devstoreaccount1"
BLOBS = "http://127.0.0.1:10000/devstoreaccount1"


@pytest.mark.parametrize(
    ("service", "method", "url", "kind"),
    [
        ("table", "POST", f"{ACCOUNT}/$batch", "table_transaction"),
        ("table", "GET", f"{ACCOUNT}/state(PartitionKey='s00',RowKey='abc')", "table_read"),
        ("table", "GET", f"{ACCOUNT}/state()?$filter=PartitionKey%20eq%20's00'", "table_query"),
        ("table", "POST", f"{ACCOUNT}/state", "table_write"),
        ("table", "PUT", f"{ACCOUNT}/state(PartitionKey='!meta',RowKey='layout')", "table_write"),
        ("table", "POST", f"{ACCOUNT}/Tables", "table_setup"),
        ("table", "DELETE", f"{ACCOUNT}/Tables('state')", "table_setup"),
        ("blob", "PUT", f"{BLOBS}/conversations/abc.json", "blob_write"),
        ("blob", "DELETE", f"{BLOBS}/state-spill/abc/123", "blob_write"),
        ("blob", "HEAD", f"{BLOBS}/conversations/abc.json", "blob_read"),
        ("blob", "GET", f"{BLOBS}/conversations?restype=container&comp=list", "blob_read"),
        ("blob", "PUT", f"{BLOBS}/conversations?restype=container", "blob_setup"),
    ],
)
def test_request_kinds(service: str, method: str, url: str, kind: str) -> None:
    assert request_kind(service, method, url) == kind  # type: ignore[arg-type]


def test_totals_add_up_and_snapshots_are_copies() -> None:
    timer = RequestTimer()
    timer.add("blob_write", 0.010, 0.002)
    timer.add("blob_write", 0.006, 0.001)
    snapshot = timer.snapshot()
    timer.add("blob_write", 1.0, 0.0)
    total = snapshot["blob_write"]
    assert total.count == 2
    assert total.wall_s == pytest.approx(0.016)
    assert total.cpu_s == pytest.approx(0.003)
    assert total.wait_s == pytest.approx(0.013)
    assert total.as_dict()["mean_wait_ms"] == pytest.approx(6.5)
    assert RequestTime().as_dict()["mean_wall_ms"] == 0.0
    assert set(timer.hooks("table")) == {"raw_request_hook", "raw_response_hook"}
