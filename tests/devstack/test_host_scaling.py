"""Several host instances and hard crashes: partitions are shared and nothing is lost."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.conftest import HostStarter
from tests.devstack.helpers import (
    checkpoint_sequence,
    checkpoints,
    echo_env,
    owned_partitions,
    produce,
    records,
    wait_until,
)

pytestmark = pytest.mark.stack

ALL_PARTITIONS = {"0", "1", "2", "3"}


def test_resume_after_kill_loses_nothing_and_redelivers_only_after_the_checkpoint(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(env=echo_env(tmp_path, "echo-kill"))
    sent = {f"key-{k}": [{"k": k, "n": n, "sleep": 0.3} for n in range(10)] for k in range(40)}
    produce(stack, "echo-kill", sent)
    wait_until(lambda: len(records(tmp_path, "record_batch")) >= 60, 30, "processing under way")

    stack.kill_host(0)
    at_kill = checkpoints(stack, "echo-kill")
    processed_before = len(records(tmp_path, "record_batch"))
    assert processed_before < 400, "everything finished before the kill; nothing was tested"
    assert at_kill, "no checkpoint before the kill; nothing was tested"

    stack.start_host(0)
    expected = Counter(json.dumps(b, sort_keys=True) for bodies in sent.values() for b in bodies)
    wait_until(
        lambda: set(expected) <= {r["body"] for r in records(tmp_path, "record_batch")},
        60,
        "every event after the restart",
    )
    seen = Counter(r["body"] for r in records(tmp_path, "record_batch"))
    assert set(seen) == set(expected)
    for row in records(tmp_path, "record_batch"):
        checkpoint = at_kill.get(row["partition"])
        if checkpoint is not None and row["sequence"] <= checkpoint.sequence_number:
            assert seen[row["body"]] == 1, f"redelivered before the checkpoint: {row}"


def test_sigterm_lets_the_in_flight_batch_finish_and_checkpoints_it(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(env=echo_env(tmp_path, "echo-kill"))
    produce(stack, "echo-kill", {"slow": [{"slow": n, "sleep": 2} for n in range(3)]})
    wait_until(lambda: len(records(tmp_path, "record_batch")) >= 3, 30, "the slow batch to start")
    rows = records(tmp_path, "record_batch")
    partition, last = rows[0]["partition"], max(r["sequence"] for r in rows)
    stack.stop_host(0)  # SIGTERM while the function sleeps
    assert checkpoint_sequence(stack, "echo-kill", partition) == last

    stack.start_host(0)
    produce(stack, "echo-kill", {"slow": [{"marker": "after"}]})
    wait_until(
        lambda: any("after" in r["body"] for r in records(tmp_path, "record_batch")),
        30,
        "the event sent after the restart",
    )
    assert len(records(tmp_path, "record_batch")) == 4  # the slow batch was not redelivered


def test_two_instances_share_partitions_and_deliver_everything_once(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(instances=2, env=echo_env(tmp_path, "echo-shared"))

    def balanced() -> bool:
        first, second = owned_partitions(stack, 0), owned_partitions(stack, 1)
        return len(first) == len(second) == 2 and first | second == ALL_PARTITIONS

    wait_until(balanced, 30, "the two instances to own two partitions each")
    sent = {f"conversation-{k}": [{"k": k, "n": n} for n in range(4)] for k in range(50)}
    produce(stack, "echo-shared", sent)
    wait_until(lambda: len(records(tmp_path, "record_batch")) >= 200, 30, "all 200 events")

    rows = records(tmp_path, "record_batch")
    assert sorted(r["body"] for r in rows) == sorted(
        json.dumps(b, sort_keys=True) for bodies in sent.values() for b in bodies
    )
    processors: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        processors[row["partition"]].add(row["pid"])
    assert set(processors) == ALL_PARTITIONS
    assert all(len(pids) == 1 for pids in processors.values()), processors
    assert len({pid for pids in processors.values() for pid in pids}) == 2


def test_graceful_stop_hands_partitions_to_the_other_instance(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(instances=2, env=echo_env(tmp_path, "echo-shared"))
    wait_until(
        lambda: owned_partitions(stack, 0) | owned_partitions(stack, 1) == ALL_PARTITIONS,
        30,
        "all partitions owned",
    )
    stack.stop_host(1)  # releases its ownership blobs on the way out
    wait_until(
        lambda: owned_partitions(stack, 0) == ALL_PARTITIONS,
        15,
        "instance 0 to take over every partition",
    )
    produce(stack, "echo-shared", {f"after-{k}": [{"after": k}] for k in range(12)})
    wait_until(lambda: len(records(tmp_path, "record_batch")) >= 12, 30, "events after the stop")
    assert {r["pid"] for r in records(tmp_path, "record_batch")} == {
        (stack.host_status(0) or {})["pid"]
    }
