"""host.json minEventBatchSize / maxWaitTime: hold events for a fuller batch, not forever."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APPS, HostStarter
from tests.devstack.helpers import echo_env, produce, wait_until

pytestmark = pytest.mark.stack

MIN_BATCH, MAX_BATCH, MAX_WAIT_S = 5, 8, 1.5  # tests/apps/batching/host.json


def invocations(folder: Path) -> list[dict[str, Any]]:
    path = folder / "invocations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def waited_s(invocation: dict[str, Any]) -> float:
    # enqueued_time is naive UTC, as the Functions host passes it.
    first = datetime.fromisoformat(invocation["first_enqueued"]).replace(tzinfo=UTC)
    return float(invocation["invoked_at"]) - first.timestamp()


def test_small_batches_wait_and_large_ones_are_split(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(app_dir=APPS / "batching", env=echo_env(tmp_path, "echo-batching"))
    produce(stack, "echo-batching", {"k": [{"n": n} for n in range(3)]})
    wait_until(lambda: len(invocations(tmp_path)) >= 1, 10, "the partial batch")
    (partial,) = invocations(tmp_path)
    assert partial["size"] == 3
    assert waited_s(partial) >= MAX_WAIT_S - 0.3, "a partial batch went out before maxWaitTime"

    produce(stack, "echo-batching", {"k": [{"n": n} for n in range(20)]})
    wait_until(lambda: sum(i["size"] for i in invocations(tmp_path)) >= 23, 10, "23 events")
    later = invocations(tmp_path)[1:]
    assert sum(i["size"] for i in later) == 20
    for invocation in later:
        assert invocation["size"] <= MAX_BATCH
        if invocation["size"] < MIN_BATCH:
            assert waited_s(invocation) >= MAX_WAIT_S - 0.3
    sequences = [s for i in invocations(tmp_path) for s in i["sequences"]]
    assert sequences == sorted(sequences) and len(set(sequences)) == 23
