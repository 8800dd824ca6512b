"""`ops lag` and `ops checkpoint reset` against the emulator, Azurite and the SDK's processor."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from adapters.checkpoints import Checkpoint
from adapters.settings import HubSettings
from adapters.wiring import checkpoint_store, hub_address
from tests.ops.conftest import ScenarioFactory

pytestmark = pytest.mark.stack


def _by_partition(report: dict[str, object]) -> dict[str, dict[str, object]]:
    partitions = report["partitions"]
    assert isinstance(partitions, list)
    return {row["partition"]: row for row in partitions}


def test_lag_counts_events_produced_then_what_a_consumer_checkpointed(
    scenario: ScenarioFactory,
) -> None:
    s = scenario("ops-lag")
    before = _by_partition(s.cli_json("lag"))
    s.produce("0", [f"event {n}".encode() for n in range(10)])
    s.produce("1", [f"event {n}".encode() for n in range(3)])

    produced = _by_partition(s.cli_json("lag"))
    assert produced["0"]["lag"] == before["0"]["lag"] + 10
    assert produced["1"]["lag"] == before["1"]["lag"] + 3
    assert produced["0"]["state"] == "no-checkpoint"
    assert produced["0"]["checkpoint_sequence_number"] is None

    # The SDK's processor checkpoints its 4th event, as the host does after a batch.
    received = s.consume("0", 4, checkpoint_at=4)
    assert len(received) == 4
    checkpointed = _by_partition(s.cli_json("lag"))
    last = checkpointed["0"]["last_enqueued_sequence_number"]
    assert checkpointed["0"]["checkpoint_sequence_number"] == received[3].sequence_number
    assert checkpointed["0"]["lag"] == last - received[3].sequence_number
    assert checkpointed["0"]["state"] == "ok"
    assert checkpointed["1"]["lag"] == produced["1"]["lag"]  # untouched
    report = s.cli_json("lag")
    assert report["total"] == checkpointed["0"]["lag"] + checkpointed["1"]["lag"]

    table = s.cli("lag")
    assert table.exit_code == 0, table.output
    assert f"total lag: {report['total']:,} events" in table.output


def test_lag_flags_a_checkpoint_ahead_of_a_recreated_hub(scenario: ScenarioFactory) -> None:
    s = scenario("ops-lag")
    s.produce("1", [b"one"])
    last = _by_partition(s.cli_json("lag"))["1"]["last_enqueued_sequence_number"]
    assert isinstance(last, int)
    # A checkpoint from a previous life of the hub: far past its last event.
    moved = s.cli("checkpoint", "reset", "--to", "latest", "--partition", "1")
    assert moved.exit_code == 0, moved.output
    hub = HubSettings.from_env(s.values)
    checkpoint_store(hub).write(hub_address(hub), Checkpoint("1", last + 1000, "99999999"))

    result = s.cli("lag")
    assert result.exit_code == 6, result.output
    assert "partition 1: ahead" in result.output
    assert "checkpoint reset --to start" in result.output
    # The hint goes to stderr: what --json prints stays JSON, the exit still says flagged.
    flagged = s.cli("lag", "--json")
    assert flagged.exit_code == 6, flagged.output
    assert _by_partition(json.loads(flagged.stdout))["1"]["state"] == "ahead"
    assert "partition 1: ahead" in flagged.stderr
    fixed = s.cli("checkpoint", "reset", "--to", "start", "--partition", "1")
    assert fixed.exit_code == 0, fixed.output
    assert _by_partition(s.cli_json("lag"))["1"]["state"] == "ok"


def test_checkpoint_reset_each_way_then_the_consumer_resumes_there(
    scenario: ScenarioFactory,
) -> None:
    s = scenario("ops-reset")
    s.produce("0", [f"early {n}".encode() for n in range(5)])
    time.sleep(1.5)
    cut = datetime.now(UTC)
    time.sleep(1.5)
    s.produce("0", [f"late {n}".encode() for n in range(5)])
    first_late = s.consume("0", 10)[5]
    assert first_late.body_as_str() == "late 0"

    def resumes_at() -> int:
        events = s.consume("0", 1)
        assert events, "the consumer received nothing"
        return int(events[0].sequence_number or 0)

    def reset(*args: str) -> dict[str, object]:
        rows = s.cli_json("checkpoint", "reset", "--partition", "0", *args)
        assert len(rows) == 1
        assert rows[0]["written"] is True
        return rows[0]

    moved = reset("--to", "sequence", "--sequence", "3")
    assert moved["resumes_at"] == 3
    assert moved["after"] == 2
    assert resumes_at() == 3

    moved = reset("--to", "start")
    assert moved["offset"] == "-1"
    assert resumes_at() == 0

    moved = reset("--to", "time", "--time", cut.strftime("%Y-%m-%dT%H:%M:%S.%f%z"))
    assert moved["resumes_at"] == first_late.sequence_number
    assert resumes_at() == first_late.sequence_number

    moved = reset("--to", "latest")
    assert s.consume("0", 1, wait_s=2) == []  # nothing after the latest event yet
    s.produce("0", [b"new"])
    assert resumes_at() == moved["resumes_at"]

    dry = s.cli_json("checkpoint", "reset", "--partition", "0", "--to", "start", "--dry-run")
    assert dry[0]["written"] is False
    assert resumes_at() == moved["resumes_at"]  # a dry run wrote nothing


def test_checkpoint_reset_refuses_while_a_consumer_owns_the_partitions(
    scenario: ScenarioFactory,
) -> None:
    s = scenario("ops-reset")
    s.produce("1", [b"x"])
    holder = s.hold_partitions()
    try:
        deadline = time.monotonic() + 30
        refused = s.cli("checkpoint", "reset", "--all", "--to", "latest")
        while refused.exit_code == 0 and time.monotonic() < deadline:
            time.sleep(0.5)  # the processor has not claimed a partition yet
            refused = s.cli("checkpoint", "reset", "--all", "--to", "latest")
        assert refused.exit_code == 4, refused.output
        assert "held by a running consumer" in refused.output
        forced = s.cli("checkpoint", "reset", "--all", "--to", "latest", "--force")
        assert forced.exit_code == 0, forced.output
    finally:
        holder.stop()
    # Closed cleanly, the processor gave its partitions up: no --force needed any more.
    after = s.cli("checkpoint", "reset", "--all", "--to", "latest")
    assert after.exit_code == 0, after.output


def test_checkpoint_reset_rejects_a_sequence_past_the_end(scenario: ScenarioFactory) -> None:
    s = scenario("ops-reset")
    s.produce("1", [b"a", b"b"])
    last = _by_partition(s.cli_json("lag"))["1"]["last_enqueued_sequence_number"]
    assert isinstance(last, int)
    result = s.cli(
        "checkpoint", "reset", "--partition", "1", "--to", "sequence", "--sequence", str(last + 5)
    )
    assert result.exit_code == 2
    assert f"ends at sequence number {last}" in result.output
    missing = s.cli("checkpoint", "reset", "--partition", "7", "--to", "start")
    assert missing.exit_code == 3
    assert "not in event hub 'ops-reset'" in missing.output
