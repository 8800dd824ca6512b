"""`ops deadletters` and `ops state` against Azurite, the emulator and the real adapters."""

from __future__ import annotations

import asyncio
import base64

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, PartitionContext
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from adapters.blob_deadletters import BlobDeadLetterSink
from adapters.settings import HubSettings, TransformSettings, Tuning
from adapters.wiring import hub_reader, transform_runtime
from functions import telemetry
from schemas.record import DeadLetter, DeadLetterSource
from tests.conftest import ROOT, HostStarter
from tests.ops.conftest import Scenario, ScenarioFactory
from transform.service import Delivery

pytestmark = pytest.mark.stack

SAMPLE = ROOT / "tests" / "data" / "sample_deliveries.jsonl"


def _sample_lines() -> list[bytes]:
    return [line for line in SAMPLE.read_bytes().splitlines() if line.strip()]


def _store_letters(s: Scenario) -> dict[str, DeadLetter]:
    """Three letters: a good payload parked at ingest, broken text, and base64 bytes."""
    good = _sample_lines()[0]
    letters = {
        "parked": DeadLetter(
            id="ingest-parked-1",
            stage="ingest",
            reason="publish-failed",
            error="the hub was down",
            received_at="2026-11-01T10:00:00.000Z",
            source=DeadLetterSource(headers={"content-type": "application/json"}),
            raw=good.decode(),
        ),
        "broken": DeadLetter(
            id="transform-broken-1",
            stage="transform",
            reason="invalid-json",
            error="not JSON",
            received_at="2026-11-02T10:00:00.000Z",
            source=DeadLetterSource(partition="0", sequence_number=7, offset="700"),
            raw="{not json",
        ),
        "binary": DeadLetter(
            id="transform-binary-1",
            stage="transform",
            reason="invalid-json",
            error="not UTF-8",
            received_at="2026-11-03T10:00:00.000Z",
            source=DeadLetterSource(partition="1", sequence_number=9, offset="900"),
            raw=base64.b64encode(b"\xff\xfe junk").decode(),
            raw_encoding="base64",
        ),
    }
    settings = TransformSettings.from_env(s.values)
    sink = BlobDeadLetterSink(settings.state, settings.deadletter_container)
    for letter in letters.values():
        sink.write(letter)
    sink.close()
    return letters


def _receive_all(s: Scenario) -> list[EventData]:
    async def run() -> list[EventData]:
        client = EventHubConsumerClient.from_connection_string(
            s.stack.eventhub_connection_string, consumer_group="$Default", eventhub_name=s.hub
        )
        got: list[EventData] = []
        idle = asyncio.Event()

        async def on_event(_: PartitionContext, event: EventData | None) -> None:
            if event is None:
                idle.set()
            else:
                got.append(event)

        async with client:
            task = asyncio.create_task(
                client.receive(on_event, starting_position="-1", max_wait_time=3)
            )
            await asyncio.wait_for(idle.wait(), 30)
            await asyncio.sleep(1)  # the other partition's idle signal
            await client.close()
            task.cancel()
        return got

    return asyncio.run(run())


def _retained(s: Scenario) -> int:
    return sum(info.retained for info in hub_reader(HubSettings.from_env(s.values)).partitions())


def test_deadletters_list_show_replay_round_trip(scenario: ScenarioFactory) -> None:
    s = scenario("ops-replay")
    letters = _store_letters(s)

    listed = s.cli_json("deadletters", "list")
    assert sorted(item["id"] for item in listed) == sorted(letter.id for letter in letters.values())
    transform = s.cli_json("deadletters", "list", "--stage", "transform")
    assert {item["id"] for item in transform} == {"transform-broken-1", "transform-binary-1"}
    day = s.cli_json("deadletters", "list", "--since", "2026-11-02", "--until", "2026-11-02")
    assert [item["id"] for item in day] == ["transform-broken-1"]
    by_reason = s.cli_json("deadletters", "list", "--reason", "publish-failed")
    assert [item["id"] for item in by_reason] == ["ingest-parked-1"]

    shown = s.cli_json("deadletters", "show", "transform-binary-1")
    assert shown["letter"]["raw_encoding"] == "base64"
    assert shown["letter"]["source"]["sequence_number"] == 9
    table = s.cli("deadletters", "show", "ingest-parked-1")
    assert table.exit_code == 0, table.output
    assert "publish-failed" in table.output
    missing = s.cli("deadletters", "show", "no-such-letter")
    assert missing.exit_code == 3

    # The parked payload goes to the hub through the ingest code: one event, keyed by its
    # conversation, carrying the original bytes and the ingest properties.
    replayed = s.cli_json("deadletters", "replay", "ingest-parked-1", "--to", "hub")
    assert [r["outcome"] for r in replayed] == ["accepted"]
    events = _receive_all(s)
    original = letters["parked"].raw.encode()
    sent = [e for e in events if e.body_as_str().encode() == original]
    assert len(sent) == 1
    assert sent[0].partition_key in (b"conv-voice-1", "conv-voice-1")
    assert sent[0].properties[b"format"] == b"envelope"

    # Still-broken bytes are dead-lettered again at ingest, and nothing reaches the hub.
    again = s.cli_json("deadletters", "replay", "--stage", "transform", "--to", "hub")
    assert sorted(r["outcome"] for r in again) == ["rejected", "rejected"]
    assert len(_receive_all(s)) == len(events)
    ingest_letters = s.cli_json("deadletters", "list", "--stage", "ingest")
    assert len(ingest_letters) == 3  # the parked one, plus one per broken body

    marked = s.cli_json("deadletters", "list", "--replayed")
    assert {item["id"] for item in marked} == {
        "ingest-parked-1",
        "transform-broken-1",
        "transform-binary-1",
    }
    assert all(item["replayed_at"] for item in marked)
    assert s.cli_json("deadletters", "list", "--not-replayed", "--stage", "transform") == []

    nothing = s.cli("deadletters", "replay", "--to", "hub")
    assert nothing.exit_code == 2
    assert "name the dead letters" in nothing.output


def test_deadletters_replay_through_the_webhook(
    scenario: ScenarioFactory, start_hosts: HostStarter
) -> None:
    s = scenario("ops-replay")
    _store_letters(s)
    host = start_hosts(app_dir=ROOT, env=s.values)
    url = host.http_base_url() + "/api/v1/genesys/events"
    # The host's own consumer holds the partitions (epoch receivers): count, do not receive.
    before = _retained(s)
    result = s.cli_json(
        "deadletters", "replay", "ingest-parked-1", "--to", "url", "--url", url, "--retries", "1"
    )
    assert [(r["status"], r["outcome"]) for r in result] == [(200, "accepted")]
    assert _retained(s) == before + 1
    bad_url = s.cli("deadletters", "replay", "ingest-parked-1", "--to", "url", "--url", "ftp://x")
    assert bad_url.exit_code == 2


def test_state_inspect_shows_a_conversation_the_service_processed(
    scenario: ScenarioFactory,
) -> None:
    s = scenario("ops-replay", GRACE_PERIOD_SECONDS="0")
    settings = TransformSettings.from_env(s.values)
    runtime = transform_runtime(settings, Tuning(cache_size=0))
    runtime.store.ensure_table()
    runtime.records.ensure_container()
    lines = _sample_lines()
    voice = [line for line in lines if b'"conv-voice-1"' in line]
    counts = runtime.service.process([Delivery(line) for line in voice])
    assert counts.applied > 0
    runtime.service.tick()

    facts = s.cli_json("state", "inspect", "conv-voice-1", "--events")
    assert facts["conversation_id"] == "conv-voice-1"
    assert facts["events"] == counts.applied
    assert facts["revision"] >= 1
    assert facts["record_revision"] == facts["revision"] == facts["written_revision"]
    assert facts["phase"] == "finalized"
    assert facts["duplicate_count"] == counts.duplicates
    assert facts["storage"]["row_key"] == "conv-voice-1"
    assert len(facts["events_list"]) == facts["events"]
    orders = [(e["order"][0], e["order"][1] or 0) for e in facts["events_list"]]
    assert orders == sorted(orders)

    table = s.cli("state", "inspect", "conv-voice-1")
    assert table.exit_code == 0, table.output
    assert "finalized" in table.output
    missing = s.cli("state", "inspect", "conv-nobody")
    assert missing.exit_code == 3
    assert "no state for conversation 'conv-nobody'" in missing.output
    assert facts["next_deadline"] is not None  # the purge, after retention


def test_state_inspect_shows_a_conversation_the_media_filter_set_aside(
    scenario: ScenarioFactory,
) -> None:
    s = scenario("ops-filter", GRACE_PERIOD_SECONDS="0", INGEST_MEDIA_TYPES="chat")
    settings = TransformSettings.from_env(s.values)
    assert settings.media.describe() == "chat"
    runtime = transform_runtime(settings, Tuning(cache_size=0))
    runtime.store.ensure_table()
    runtime.records.ensure_container()
    voice = [line for line in _sample_lines() if b'"conv-voice-1"' in line]
    counts = runtime.service.process([Delivery(line) for line in voice])
    counts.add(runtime.service.tick())
    assert counts.filtered_conversations == 1 and counts.filtered_events == counts.applied
    assert counts.revisions_written == 0

    facts = s.cli_json("state", "inspect", "conv-voice-1")
    assert facts["phase"] == "set aside by the media filter (media type voice; never written)"
    assert (facts["media_type"], facts["media_filter"]) == ("voice", "chat")
    assert facts["set_aside_at"] is not None and facts["record_revision"] is None
    assert facts["events"] == counts.applied and facts["revision"] == 0
    table = s.cli("state", "inspect", "conv-voice-1")
    assert table.exit_code == 0 and "set aside by the media filter" in table.output


def test_telemetry_probe_measures_lag_and_open_conversations(scenario: ScenarioFactory) -> None:
    s = scenario("ops-lag")
    settings = TransformSettings.from_env(s.values)
    runtime = transform_runtime(settings, Tuning(cache_size=0))
    runtime.store.ensure_table()
    first = _sample_lines()[0]  # the start of conv-voice-1: open, nothing ended yet
    runtime.service.process([Delivery(first)])
    reader = InMemoryMetricReader()
    installed = telemetry.install(MeterProvider(metric_readers=[reader]))
    try:
        probed = telemetry.probe(s.values, installed)
        expected = {row["partition"]: row["lag"] for row in s.cli_json("lag")["partitions"]}
        assert probed.lag == expected
        assert probed.open_conversations == 1
        data = reader.get_metrics_data()
        assert data is not None
        names = {
            m.name for r in data.resource_metrics for sc in r.scope_metrics for m in sc.metrics
        }
        assert {"consumer_lag_events", "consumer_lag_events_total", "open_conversations"} <= names
    finally:
        telemetry.uninstall()
