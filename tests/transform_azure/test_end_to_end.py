"""End to end on the local stack: ingest → Event Hubs → transform → Blob, against the replay.

A few hundred simulated conversations (realistic profile: duplicates, reordering, envelopes
split with sequence resets, late wrap-ups, conversations that never end) are posted to the
ingest route of the local host running the project's own function_app.py. The records the
pipeline ends with must equal, field for field, what `python -m transform replay` makes of
the same deliveries, except the fields that depend on processing time.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from tests.replaying import replay_in_memory
from tests.transform_azure.conftest import stored_records
from transform.derive import PROCESSING_FIELDS
from transform.state import Timing

pytestmark = [pytest.mark.stack, pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
IGNORED = PROCESSING_FIELDS | {"first_seen_at"}
GRACE_S, IDLE_S = 2, 25


def observable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in IGNORED}


def test_ingest_to_records_matches_the_offline_replay(
    local_stack: Any, start_hosts: Callable[..., Any]
) -> None:
    from simulator.generate.dataset import generate
    from simulator.generate.profiles import resolve

    dataset = generate(
        conversations=300, seed=2024, profile="realistic", knobs=resolve("realistic", {})
    )
    deliveries = dataset.deliveries_bytes()
    lines = deliveries.splitlines()
    timing = Timing(GRACE_S * 1000, IDLE_S * 1000)
    expected_sink, _, _ = replay_in_memory(io.BytesIO(deliveries), timing=timing)
    expected = {cid: observable(r) for cid, r in expected_sink.records.items()}
    assert len(expected) >= 280

    suffix = uuid.uuid4().hex[:8]
    records_container = f"e2e-records-{suffix}"
    host = start_hosts(
        app_dir=ROOT,
        env={
            "EVENTHUB_NAME": "genesys-events",
            "WEBHOOK_SECRET": "",
            "STATE_TABLE_NAME": f"e2estate{suffix}",
            "RECORDS_CONTAINER": records_container,
            "DEADLETTER_CONTAINER": f"e2e-deadletter-{suffix}",
            "GRACE_PERIOD_SECONDS": str(GRACE_S),
            "IDLE_TIMEOUT_SECONDS": str(IDLE_S),
            "TIMER_SCHEDULE": "*/2 * * * * *",
        },
    )
    url = host.http_base_url() + "/api/v1/genesys/events"
    with httpx.Client(timeout=30) as client:

        def post(body: bytes) -> int:
            answer = client.post(url, content=body, headers={"Content-Type": "application/json"})
            return answer.status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(post, lines))
    assert statuses.count(200) == len(lines), {s: statuses.count(s) for s in set(statuses)}

    blobs = BlobServiceClient.from_connection_string(local_stack.storage_connection_string)
    records = blobs.get_container_client(records_container)
    deadline = time.monotonic() + 240
    got: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        got = {cid: observable(r) for cid, r in stored_records(records).items()}
        if all(got.get(cid) == record for cid, record in expected.items()):
            break
        time.sleep(2)
    missing = sorted(set(expected) - set(got))
    different = sorted(cid for cid in expected if cid in got and got[cid] != expected[cid])
    diffs = {
        cid: {k: (got[cid].get(k), v) for k, v in expected[cid].items() if got[cid].get(k) != v}
        for cid in different[:3]
    }
    assert not missing and not different, f"missing={missing[:5]} different={diffs}"
    assert set(got) <= set(expected) | set(got), "no unexpected conversations of ours"

    metrics = httpx.get(host.http_base_url() + "/api/transform/metrics", timeout=10).json()
    print(
        f"\nend to end: {len(expected)} conversations, {metrics['counts']['micro_events']} "
        f"micro-events, {metrics['storage_operations']['total']} storage requests, "
        f"{metrics['operations_per_micro_event']} per micro-event; {metrics}"
    )
