"""The simulator against the local stack: `verify` from Blob, and short `run`s (with faults).

The runs take about a minute together: one reuses the session's Azurite and emulator (its own
host, table, containers and consumer group), one starts a private stack and injects faults.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from typer.testing import CliRunner

from devstack.stack import Stack
from simulator.cli import app
from tests.simulator.fake_replay import perfect_record
from tests.simulator.payloads import envelope

runner = CliRunner()
RUN_TUNING = ["--grace", "2", "--idle", "6", "--timer", "1", "--drain-timeout", "120", "-q"]


@pytest.fixture
def containers(local_stack: Stack) -> Iterator[tuple[BlobServiceClient, str, str]]:
    tag = uuid.uuid4().hex[:8]
    blobs = BlobServiceClient.from_connection_string(local_stack.storage_connection_string)
    names = (f"records-{tag}", f"letters-{tag}")
    for name in names:
        blobs.create_container(name)
    yield blobs, *names
    for name in names:
        blobs.delete_container(name)
    blobs.close()


def _letter(entry: dict[str, Any], text: str, letter_id: str) -> bytes:
    return orjson.dumps(
        {
            "id": letter_id,
            "stage": "ingest",
            "reason": entry["kind"],
            "error": "rejected",
            "received_at": "2026-11-24T08:00:00.000Z",
            "source": {"headers": {"x-request-id": f"simulator-line-{entry['line']}"}},
            "raw": text,
            "raw_encoding": "utf-8",
        }
    )


@pytest.mark.stack
def test_verify_reads_records_and_dead_letters_from_blob(
    local_stack: Stack, containers: tuple[BlobServiceClient, str, str], written: dict[str, Path]
) -> None:
    blobs, records, letters = containers
    data = written["chaos"]
    truth = [orjson.loads(x) for x in (data / "truth.jsonl").read_bytes().splitlines()]
    for n, record in enumerate(truth):
        blobs.get_blob_client(records, f"{n}.json").upload_blob(
            orjson.dumps(perfect_record(record))
        )
    lines = (data / "deliveries.jsonl").read_bytes().decode().splitlines()
    manifest = orjson.loads((data / "manifest.json").read_bytes())
    for n, entry in enumerate(manifest["malformed"]):
        text = lines[entry["line"] - 1]
        if entry["element"] is not None:
            text = orjson.dumps(orjson.loads(text)[entry["element"]]).decode()
        body = _letter(entry, text, f"ingest-{n}")
        blobs.get_blob_client(letters, f"ingest/2026/11/24/{n}.json").upload_blob(body)
        if n == 0:  # a retry on the next day: same id under another prefix, read once
            blobs.get_blob_client(letters, f"ingest/2026/11/25/{n}.json").upload_blob(body)
    env = {
        "StateStorage": local_stack.storage_connection_string,
        "RECORDS_CONTAINER": records,
        "DEADLETTER_CONTAINER": letters,
    }
    args = ["verify", str(data), "--settings", os.devnull, "-q"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"devstoreaccount1/{records}" in result.output
    changed = perfect_record(truth[0]) | {"hold_seconds": 999.0}
    blobs.get_blob_client(records, "0.json").upload_blob(orjson.dumps(changed), overwrite=True)
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1 and "hold_seconds" in result.output


def _report(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((folder / "report.json").read_bytes())
    return document


@pytest.mark.stack
@pytest.mark.e2e
def test_a_short_run_on_the_running_stack_verifies(local_stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "-n", "30", "--profile", "realistic", "--out", str(out), "--rate", "40"]
    result = runner.invoke(app, [*args, "--stack-dir", str(local_stack.state_dir), *RUN_TUNING])
    assert result.exit_code == 0, result.output
    report = _report(out)
    assert report["verify"]["ok"] and report["verify"]["summary"]["records"]["matched"] == 30
    assert report["stack"].startswith("reused the running stack")
    assert report["send"]["deliveries"] == report["dataset"]["deliveries"]
    assert report["send"]["gave_up"] == 0 and report["rate"]["achieved"] > 30
    assert report["consumer"]["operations_per_micro_event"] > 0
    assert report["end_to_end"]["last_send_to_record_s"]["p50"] >= 2  # the grace
    assert (out / "report.html").read_text().count("<svg") == 2
    assert "VERIFIED" in result.output
    # The run stopped its own host only: the session's services still answer.
    assert local_stack.eventhubs_healthy()
    assert not any(
        p.name == "host-0" and p.healthy
        for p in Stack.load(Path(__file__).resolve().parents[2], out / "stack").status()
    )


@pytest.mark.stack
@pytest.mark.e2e
def test_a_relay_run_filters_media_dead_letters_foreign_topics_and_answers_heartbeats(
    local_stack: Stack, tmp_path: Path
) -> None:
    """The route through the pipeline: INGEST_MEDIA_TYPES on the host, EventBridge deliveries
    as an API destination sends them, topics that are not detail topics, relay heartbeats."""
    out = tmp_path / "relay"
    args = ["run", "-n", "40", "--profile", "relay", "--out", str(out), "--rate", "40"]
    result = runner.invoke(app, [*args, "--stack-dir", str(local_stack.state_dir), *RUN_TUNING])
    assert result.exit_code == 0, result.output
    report = _report(out)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    counts = manifest["counts"]
    assert report["settings"]["INGEST_MEDIA_TYPES"] == "chat,voice"
    assert "WEBHOOK_SECRET" not in report["settings"]  # EventBridge cannot sign
    summary = report["verify"]["summary"]
    kept = counts["conversations"] - counts["filtered"]["conversations"]
    assert counts["filtered"]["conversations"] > 0 and kept > 0
    assert summary["records"] == {
        "matched": kept,
        "mismatched": 0,
        "missing": 0,
        "unexpected": 0,
        "undelivered": 0,
    }
    letters = summary["dead_letters"]
    assert letters["expected"] == counts["malformed"]["by_kind"]["unsupported-topic"] > 0
    assert (letters["matched"], letters["missing"], letters["unexpected"]) == (
        letters["expected"],
        0,
        0,
    )
    route = report["route"]
    assert (
        route["counted"]
        == route["expected"]
        == {
            "filtered_conversations": counts["filtered"]["conversations"],
            "filtered_events": counts["filtered"]["micro_events"],
            "heartbeats": counts["heartbeats"],
        }
    )
    assert counts["heartbeats"] > 0 and route["heartbeats_reaching_the_transform"] == 0
    assert route["set_aside_in_state"] == counts["filtered"]["conversations"]
    assert report["send"]["eventbridge"]["deliveries"] > 0
    assert report["send"]["gave_up"] == 0 and report["send"]["rejected_4xx"] > 0
    assert "INGEST_MEDIA_TYPES=chat,voice" in result.output


@pytest.mark.e2e
def test_a_chaos_run_with_a_host_kill_and_an_emulator_outage_verifies_exactly(
    tmp_path: Path,
) -> None:
    out = tmp_path / "chaos"
    faults = ["--faults", "--fault-kinds", "host,eventhubs", "--fault-first", "2"]
    faults += ["--fault-every", "6", "--fault-duration", "2"]
    args = ["run", "-n", "40", "--profile", "chaos", "--out", str(out), "--rate", "20"]
    result = runner.invoke(app, [*args, "--fresh-stack", *faults, *RUN_TUNING])
    assert result.exit_code == 0, result.output
    report = _report(out)
    kinds = [f["kind"] for f in report["faults"]]
    assert kinds[:2] == ["host", "eventhubs"]
    assert all(f["recovered_at"] for f in report["faults"])
    assert report["send"]["retries"] > 0 and report["send"]["gave_up"] == 0
    summary = report["verify"]["summary"]
    assert summary["records"] == {
        "matched": 40,
        "mismatched": 0,
        "missing": 0,
        "unexpected": 0,
        "undelivered": 0,
    }
    assert summary["dead_letters"]["missing"] == 0 and summary["dead_letters"]["unexpected"] == 0
    assert report["stack"].startswith("private stack")
    assert not (out / "stack" / "pids").exists() or not list((out / "stack" / "pids").iterdir())


@pytest.mark.stack
def test_a_stack_whose_consumer_group_is_busy_is_not_reused(
    local_stack: Stack, tmp_path: Path
) -> None:
    from adapters.settings import eventhub_connection, namespace_of
    from simulator.run.runstack import REUSE_CONSUMER_GROUP, RunStack, Tuning

    free = RunStack(tmp_path / "a", Tuning(), reuse_dir=local_stack.state_dir)
    assert free.reused and free.names.consumer_group == REUSE_CONSUMER_GROUP
    assert free.names.host_id and free.names.state_table != "conversationstate"
    blobs = BlobServiceClient.from_connection_string(local_stack.storage_connection_string)
    container = blobs.get_container_client("azure-webjobs-eventhub")
    if not container.exists():
        container.create_container()
    hub = eventhub_connection(
        {"EventHubConnection": local_stack.eventhub_connection_string}, "EventHubConnection"
    )
    # Where another run's host claims partitions: the stack's namespace, the run's group.
    name = f"{namespace_of(hub)}/genesys-events/{REUSE_CONSUMER_GROUP}/ownership/7"
    container.upload_blob(name, b"", overwrite=True, metadata={"ownerid": "another-run"})
    try:
        busy = RunStack(tmp_path / "b", Tuning(), reuse_dir=local_stack.state_dir)
        assert not busy.reused and "in use (partitions 7" in busy.describe()
        assert busy.names.state_table == "conversationstate"  # a private stack: defaults
    finally:
        container.delete_blob(name)
        blobs.close()
    assert not RunStack(tmp_path / "c", Tuning(), reuse_dir=tmp_path / "none").reused


async def _hub_events(connection: str, hub: str, marker: str) -> list[tuple[str | None, bytes]]:
    """(partition key, body) of every event in `hub` whose body contains `marker`."""
    import asyncio
    import contextlib

    from azure.eventhub.aio import EventHubConsumerClient

    found: list[tuple[str | None, bytes]] = []

    async def on_event(partition: Any, event: Any) -> None:
        if event is not None and marker.encode() in event.body_as_str().encode():
            key = event.partition_key
            found.append((key.decode() if isinstance(key, bytes) else key, b"".join(event.body)))

    client = EventHubConsumerClient.from_connection_string(connection, "cg1", eventhub_name=hub)
    task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
    await asyncio.sleep(4)
    await client.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return found


@pytest.mark.stack
def test_send_eventhub_splits_per_conversation_and_sends_rejects_raw(
    local_stack: Stack, tmp_path: Path
) -> None:
    import asyncio

    tag = uuid.uuid4().hex
    a, b = f"{tag}-a", f"{tag}-b"
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(
        orjson.dumps([envelope(a), envelope(b), envelope(a)])
        + b"\n"
        + f'{{"broken {tag}'.encode()
        + b"\n"
    )
    env = {
        "EventHubConnection": local_stack.eventhub_connection_string,
        "EVENTHUB_NAME": "test-events",
    }
    args = ["send", str(capture), "--eventhub", "--settings", os.devnull, "-q"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    events = asyncio.run(_hub_events(local_stack.eventhub_connection_string, "test-events", tag))
    by_key = {key: body for key, body in events}
    assert set(by_key) == {a, b, "simulator-rejected-2-0"}
    assert orjson.loads(by_key[a]) == [envelope(a), envelope(a)]
    assert orjson.loads(by_key[b]) == envelope(b)
    assert by_key["simulator-rejected-2-0"] == f'{{"broken {tag}'.encode()


@pytest.mark.stack
def test_replay_resends_dead_letters_from_blob(
    local_stack: Stack, containers: tuple[BlobServiceClient, str, str], tmp_path: Path
) -> None:
    from tests.simulator.http_server import serve

    blobs, _, letters = containers
    entries = [
        {"line": 1, "kind": "transient-failure-parked"},
        {"line": 2, "kind": "invalid-json"},
    ]
    for n, (entry, raw) in enumerate(zip(entries, ('{"parked": 1}', "{oops"), strict=True)):
        body = _letter(entry, raw, f"letter-{n}")
        blobs.get_blob_client(letters, f"ingest/2026/11/24/{n}.json").upload_blob(body)
    env = {"StateStorage": local_stack.storage_connection_string, "DEADLETTER_CONTAINER": letters}
    with serve() as (url, seen):
        args = ["replay", "blob", "--target", url, "--reason", "transient-failure-parked"]
        args += ["--settings", os.devnull, "--log", str(tmp_path / "r.jsonl")]
        result = runner.invoke(app, [*args, "-q"], env=env)
    assert result.exit_code == 0, result.output
    assert [s.body for s in seen.seen] == [b'{"parked": 1}']
