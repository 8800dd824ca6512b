"""Event Hub triggers through the local host, against the emulator and Azurite."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import HostStarter
from tests.devstack.helpers import (
    bodies_of,
    checkpoint_blobs,
    checkpoint_prefix,
    checkpoint_sequence,
    checkpoints,
    echo_env,
    produce,
    records,
    wait_until,
)

pytestmark = pytest.mark.stack


def test_trigger_receives_everything_produced_through_http(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(env=echo_env(tmp_path, "echo-basic"))
    base = stack.http_base_url() + "/api"
    sent = []
    for key_number in range(6):
        key = f"conversation-{key_number}"
        bodies = [{"key": key, "n": n} for n in range(9)]
        answer = httpx.post(
            f"{base}/produce", params={"key": key}, json={"bodies": bodies}, timeout=30
        )
        assert answer.json() == {"sent": 9}
        sent.extend(bodies)

    wait_until(lambda: len(records(tmp_path, "record_batch")) >= len(sent), 30, "all events")
    rows = records(tmp_path, "record_batch")
    assert sorted(bodies_of(rows), key=json.dumps) == sorted(sent, key=json.dumps)
    by_key: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        assert row["partition_key"] == json.loads(row["body"])["key"]
        by_key[row["partition_key"]].add(row["partition"])
        assert 1 <= row["batch_size"] <= 10  # host.json maxEventBatchSize
        assert isinstance(row["offset"], int)  # cardinality many: the worker gives an int
        # The host passes EnqueuedTime.DateTime: a naive datetime holding UTC.
        assert datetime.fromisoformat(row["enqueued_time"]).tzinfo is None
        assert {"PartitionContext", "SequenceNumberArray", "SystemPropertiesArray"} <= set(
            row["metadata_keys"]
        )
    assert all(len(partitions) == 1 for partitions in by_key.values())
    for partition in {row["partition"] for row in rows}:
        sequences = [r["sequence"] for r in rows if r["partition"] == partition]
        assert sequences == sorted(sequences)
        assert len(set(sequences)) == len(sequences)


def test_checkpoints_are_where_the_functions_host_keeps_them(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(env=echo_env(tmp_path, "echo-basic"))
    produce(stack, "echo-basic", {f"k{i}": [{"i": i, "n": n} for n in range(5)] for i in range(8)})
    wait_until(lambda: len(records(tmp_path, "record_batch")) >= 40, 30, "40 events")
    rows = records(tmp_path, "record_batch")
    last = {}
    for row in rows:
        last[row["partition"]] = max(last.get(row["partition"], -1), row["sequence"])

    def checkpointed_last() -> bool:
        found = checkpoints(stack, "echo-basic")
        return {p: c.sequence_number for p, c in found.items()} == last

    wait_until(checkpointed_last, 10, "checkpoints at the last sequence of each partition")
    names = set(checkpoint_blobs(stack, "echo-basic"))
    prefix = checkpoint_prefix(stack, "echo-basic")
    assert prefix == f"localhost:{stack.ports.amqp}/echo-basic/$default/"
    assert {f"{prefix}checkpoint/0", f"{prefix}checkpoint/1"} <= names
    assert {f"{prefix}ownership/0", f"{prefix}ownership/1"} <= names
    for partition, checkpoint in checkpoints(stack, "echo-basic").items():
        offsets = [r["offset"] for r in rows if r["sequence"] == checkpoint.sequence_number]
        assert str(offsets[0]) == checkpoint.offset, partition


def test_cardinality_one_gets_each_event_with_string_offset(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(env=echo_env(tmp_path))
    produce(stack, "echo-single", {"one": [{"n": n} for n in range(5)]})
    wait_until(lambda: len(records(tmp_path, "record_single")) >= 5, 30, "5 single events")
    rows = records(tmp_path, "record_single")
    assert [json.loads(r["body"])["n"] for r in rows] == list(range(5))
    assert all(r["batch_size"] == 1 and isinstance(r["offset"], str) for r in rows)
    assert "SystemProperties" in rows[0]["metadata_keys"]


def test_failed_invocation_is_still_checkpointed(start_hosts: HostStarter, tmp_path: Path) -> None:
    """The host checkpoints after a failure: the batch is not delivered again, even on restart."""
    stack = start_hosts(env=echo_env(tmp_path))
    produce(stack, "echo-fail", {"failing": [{"fail": True, "n": n} for n in range(3)]})
    wait_until(lambda: len(records(tmp_path, "record_failing")) >= 3, 30, "the failing batch")
    rows = records(tmp_path, "record_failing")
    partition = rows[0]["partition"]
    last_sequence = max(r["sequence"] for r in rows)
    wait_until(
        lambda: checkpoint_sequence(stack, "echo-fail", partition) == last_sequence,
        10,
        "a checkpoint after the failed invocation",
    )

    def failures_reported() -> bool:
        status = stack.host_status(0) or {}
        listeners = status.get("listeners", [])
        return any(s["function"] == "record_failing" and s["failures"] >= 1 for s in listeners)

    wait_until(failures_reported, 5, "the failure in the host status")

    stack.restart_host(0)
    produce(stack, "echo-fail", {"failing": [{"fail": False, "marker": "after-restart"}]})
    wait_until(
        lambda: any("after-restart" in r["body"] for r in records(tmp_path, "record_failing")),
        30,
        "the event sent after the restart",
    )
    # Each failed event was delivered exactly once.
    failed_again = [r for r in records(tmp_path, "record_failing") if '"fail": true' in r["body"]]
    assert len(failed_again) == 3


def test_no_checkpoint_while_retrying_then_checkpoint(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    """fixed_delay 1 s, 3 retries: fails twice, succeeds on retry 2; checkpoint only after that."""
    stack = start_hosts(env=echo_env(tmp_path))
    before = checkpoint_sequence(stack, "echo-retry", "0")
    produce(stack, "echo-retry", {"r": [{"fail_times": 2}]})

    def attempts() -> list[int]:
        return [r["retry"] for r in records(tmp_path, "record_retrying")]

    wait_until(lambda: len(attempts()) >= 1, 30, "the first attempt")
    sequence = records(tmp_path, "record_retrying")[0]["sequence"]
    # Between the failed attempts the partition waits and its checkpoint does not move.
    wait_until(lambda: len(attempts()) >= 2, 10, "the first retry")
    assert checkpoint_sequence(stack, "echo-retry", "0") == before
    wait_until(lambda: len(attempts()) >= 3, 10, "the second retry")
    wait_until(
        lambda: checkpoint_sequence(stack, "echo-retry", "0") == sequence,
        10,
        "the checkpoint after the successful retry",
    )
    assert attempts() == [0, 1, 2]


def test_exhausted_retries_checkpoint_and_shutdown_during_retries_does_not(
    start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(env=echo_env(tmp_path))
    produce(stack, "echo-retry", {"r": [{"fail_times": 99, "case": "exhausted"}]})
    wait_until(lambda: len(records(tmp_path, "record_retrying")) >= 4, 30, "1 try + 3 retries")
    exhausted = records(tmp_path, "record_retrying")
    assert [r["retry"] for r in exhausted] == [0, 1, 2, 3]
    wait_until(
        lambda: checkpoint_sequence(stack, "echo-retry", "0") == exhausted[0]["sequence"],
        10,
        "the checkpoint once retries are exhausted",
    )

    produce(stack, "echo-retry", {"r": [{"fail_times": 99, "case": "interrupted"}]})
    wait_until(lambda: len(records(tmp_path, "record_retrying")) >= 5, 30, "the next batch")
    interrupted = records(tmp_path, "record_retrying")[4]
    stack.stop_host(0)  # SIGTERM while the retry waits
    assert checkpoint_sequence(stack, "echo-retry", "0") == exhausted[0]["sequence"]
    stack.start_host(0)
    wait_until(
        lambda: any(
            r["sequence"] == interrupted["sequence"] and r["pid"] != interrupted["pid"]
            for r in records(tmp_path, "record_retrying")
        ),
        30,
        "the unfinished batch delivered again after the restart",
    )
