"""The local host's pure parts: host.json, routes, retry delays, schedules, settings, indexing
through the worker runtime, and the trigger data the runtime decodes (no services needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.eventhub import EventData
from azure_functions_runtime.bindings.meta import from_incoming_proto, load_binding_registry

from devstack.errors import IndexingError, SettingError
from devstack.host.app_settings import resolve_setting_expression
from devstack.host.connections import resolve_eventhub_connection, resolve_storage_connection
from devstack.host.host_config import parse_host_config, parse_timespan
from devstack.host.indexing import RetryPolicy, function_definition
from devstack.host.routes import compile_route, order_routes
from devstack.host.timer_schedule import parse_schedule
from devstack.host.trigger_data import (
    PartitionInfo,
    TriggerInput,
    WorkerCapabilities,
    batch_input,
    dotnet_datetime,
    single_input,
    timer_input,
)
from devstack.settings import (
    apply_to_environment,
    dev_storage_connection_string,
    eventhubs_emulator_connection_string,
    load_local_settings,
)
from tests.conftest import ECHO_APP
from tests.functions.test_worker_load import load as load_in_runtime

# --------------------------------------------------------------------------- host.json


def test_host_json_defaults_match_the_runtime() -> None:
    config = parse_host_config({"version": "2.0"})
    assert config.route_prefix == "api"
    assert config.function_timeout is None
    hubs = config.event_hubs
    assert (hubs.max_event_batch_size, hubs.prefetch_count, hubs.batch_checkpoint_frequency) == (
        100,
        300,
        1,
    )
    assert hubs.initial_offset.starting_position() == "-1"


def test_host_json_event_hubs_and_http_settings() -> None:
    config = parse_host_config(
        {
            "extensions": {
                "http": {"routePrefix": ""},
                "eventHubs": {
                    "maxEventBatchSize": 10,
                    "prefetchCount": 20,
                    "batchCheckpointFrequency": 2,
                    "initialOffsetOptions": {
                        "type": "fromEnqueuedTime",
                        "enqueuedTimeUtc": "2024-05-01T00:00:00Z",
                    },
                },
            },
            "functionTimeout": "00:05:00",
        }
    )
    assert config.route_prefix == ""
    assert config.function_timeout == timedelta(minutes=5)
    assert config.event_hubs.max_event_batch_size == 10
    assert config.event_hubs.prefetch_count == 20
    assert config.event_hubs.batch_checkpoint_frequency == 2
    assert config.event_hubs.initial_offset.starting_position() == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_host_config({"functionTimeout": "-1"}).function_timeout is None


def test_timespans() -> None:
    assert parse_timespan("00:00:02") == timedelta(seconds=2)
    assert parse_timespan("1.02:03:04.5") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    with pytest.raises(SettingError, match="hh:mm:ss"):
        parse_timespan("5 minutes")


# --------------------------------------------------------------------------- routes


def test_route_templates_match_like_the_host() -> None:
    route = compile_route("items/{id:int}/{name?}", "api")
    assert route.match("/api/items/42") == {"id": "42"}
    assert route.match("/API/Items/42/bob") == {"id": "42", "name": "bob"}
    assert route.match("/api/items/x") is None
    assert compile_route("files/{*rest}", "api").match("/api/files/a/b/c") == {"rest": "a/b/c"}
    assert compile_route("v1/genesys/events", "api").match("/api/v1/genesys/events") == {}
    assert compile_route("health", "").match("/health") == {}


def test_literal_routes_win_over_parameters() -> None:
    ordered = order_routes([compile_route("{name}", "api"), compile_route("health", "api")])
    assert [r.template for r in ordered] == ["api/health", "api/{name}"]


# --------------------------------------------------------------------------- retries, timers


def test_retry_delays() -> None:
    fixed = RetryPolicy("fixed_delay", 2, delay_interval=timedelta(seconds=3))
    assert [fixed.allows_retry(n) for n in range(3)] == [True, True, False]
    assert fixed.delay_before_retry(2) == timedelta(seconds=3)
    backoff = RetryPolicy(
        "exponential_backoff",
        -1,
        minimum_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=5),
    )
    assert backoff.allows_retry(1000)
    delays = [backoff.delay_before_retry(n).total_seconds() for n in range(1, 6)]
    assert delays == [1, 2, 4, 5, 5]


def test_schedules() -> None:
    start = datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    every_five = parse_schedule("*/5 * * * * *")
    assert every_five.next_after(start) == datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC)
    hourly = parse_schedule("0 0 * * * *")
    assert hourly.next_after(start) == datetime(2024, 1, 1, 1, 0, 0, tzinfo=UTC)
    assert parse_schedule("00:00:30").next_after(start) == start + timedelta(seconds=30)
    with pytest.raises(SettingError, match="6-field NCRONTAB"):
        parse_schedule("*/5 * * * *")


# --------------------------------------------------------------------------- settings


def test_environment_wins_over_local_settings(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file"}}))
    environment = {"A": "shell"}
    skipped = apply_to_environment(load_local_settings(path).values, environment)
    assert environment == {"A": "shell", "B": "file"}
    assert skipped == ["A"]


def test_broken_local_settings_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text("{")
    with pytest.raises(SettingError, match=str(path)):
        load_local_settings(path)


def test_connections_string_or_identity() -> None:
    emulator = eventhubs_emulator_connection_string()
    assert resolve_eventhub_connection({"Hub": emulator}, "Hub").connection_string == emulator
    identity = resolve_eventhub_connection(
        {"Hub__fullyQualifiedNamespace": "ns.servicebus.windows.net", "Hub__clientId": "x"}, "Hub"
    )
    assert identity.fully_qualified_namespace == "ns.servicebus.windows.net"
    assert dict(identity.identity)["clientid"] == "x"
    prefixed = resolve_eventhub_connection({"AzureWebJobsHub": emulator}, "Hub")
    assert prefixed.setting == "AzureWebJobsHub"
    with pytest.raises(SettingError, match="Hub__fullyQualifiedNamespace"):
        resolve_eventhub_connection({}, "Hub")

    storage = resolve_storage_connection(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "AzureWebJobsStorage"
    )
    assert storage.connection_string == dev_storage_connection_string()
    by_uri = resolve_storage_connection({"S__serviceUri": "https://a.blob.core.windows.net"}, "S")
    assert by_uri.blob_service_uri == "https://a.blob.core.windows.net"
    by_name = resolve_storage_connection({"S__accountName": "acct"}, "S")
    assert by_name.blob_service_uri == "https://acct.blob.core.windows.net"


def test_binding_expressions() -> None:
    assert resolve_setting_expression("%HUB%", {"HUB": "h"}, where="f") == "h"
    assert resolve_setting_expression("plain", {}, where="f") == "plain"
    with pytest.raises(SettingError, match="'HUB'"):
        resolve_setting_expression("%HUB%", {}, where="f")


# --------------------------------------------------------------------------- indexing


def test_echo_app_is_indexed_by_the_worker_runtime() -> None:
    loaded = load_in_runtime(ECHO_APP)
    assert loaded.returncode == 0, loaded.stderr
    functions = {f["name"]: f["bindings"] for f in json.loads(loaded.stdout)["functions"]}
    assert functions["http_echo"][0]["route"] == "echo/{name}"
    batch = functions["record_batch"][0]
    assert (batch["cardinality"], batch["dataType"], batch["eventHubName"]) == (
        "MANY",
        "BINARY",
        "%ECHO_HUB%",
    )
    assert functions["timer_tick"][0]["runOnStartup"] is True


def test_retry_options_and_bindings_become_the_hosts_definition() -> None:
    from devstack.host.rpc import protos

    bindings = ['{"type": "eventHubTrigger", "name": "events", "direction": "IN"}']
    metadata = protos.RpcFunctionMetadata(
        name="f",
        function_id="id-1",
        raw_bindings=bindings,
        retry_options=protos.RpcRetryOptions(
            retry_strategy="fixed_delay", max_retry_count=3, delay_interval=timedelta(seconds=1)
        ),
    )
    definition = function_definition(metadata)
    assert definition.retry == RetryPolicy("fixed_delay", 3, delay_interval=timedelta(seconds=1))
    assert (definition.function_id, definition.trigger_argument) == ("id-1", "events")
    assert function_definition(protos.RpcFunctionMetadata(raw_bindings=bindings)).retry is None


def test_apps_the_host_cannot_run_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.queue_trigger(arg_name='m', queue_name='q', connection='AzureWebJobsStorage')\n"
        "def on_queue(m): ...\n"
    )
    from devstack.host.rpc import protos

    # The runtime accepts a queue trigger; the host refuses it when it reads the metadata.
    loaded = load_in_runtime(tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    (on_queue,) = json.loads(loaded.stdout)["functions"]
    raw = [json.dumps(binding) for binding in on_queue["bindings"]]
    with pytest.raises(IndexingError, match="queueTrigger"):
        function_definition(protos.RpcFunctionMetadata(name=on_queue["name"], raw_bindings=raw))
    missing = load_in_runtime(tmp_path / "missing")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_an_app_the_runtime_refuses_fails_with_the_runtimes_words(tmp_path: Path) -> None:
    # Why functions/transform.py annotates its batch with typing.List: the runtime takes
    # `List[func.EventHubEvent]` and refuses the built-in `list[...]` when it indexes the app.
    app = (
        "import typing\n"
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.event_hub_message_trigger(arg_name='events', event_hub_name='h',\n"
        "    connection='EventHubConnection', cardinality='many')\n"
        "def on_events(events: {annotation}[func.EventHubEvent]) -> None: ...\n"
    )
    (tmp_path / "function_app.py").write_text(app.format(annotation="typing.List"))
    loaded = load_in_runtime(tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert [f["name"] for f in json.loads(loaded.stdout)["functions"]] == ["on_events"]

    (tmp_path / "function_app.py").write_text(app.format(annotation="list"))
    refused = load_in_runtime(tmp_path)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert (
        "the worker runtime refused the app: FunctionLoadError: cannot load the on_events "
        "function: binding events has invalid non-type annotation "
        "list[azure.functions._eventhub.EventHubEvent]"
    ) in refused.stderr


# ------------------------------------------------- trigger data, decoded by the worker runtime


def decoded(given: TriggerInput, binding: str = "eventHubTrigger") -> Any:
    """What the worker runtime makes of the host's trigger data (its own decode path)."""
    load_binding_registry()
    (parameter,) = given.input_data
    return from_incoming_proto(
        binding,
        parameter,
        pytype=None,
        trigger_metadata=given.trigger_metadata,
        function_name="f",
    )


def received_event(sequence: int, body: bytes = b'{"a": 1}') -> EventData:
    """An EventData as the SDK hands it over after receiving (service annotations set)."""
    event = EventData(body)
    event.raw_amqp_message.annotations = {
        b"x-opt-sequence-number": sequence,
        b"x-opt-offset": str(1000 + sequence).encode(),
        b"x-opt-enqueued-time": 1_700_000_000_123,
        b"x-opt-partition-key": b"conversation-1",
    }
    event.properties = {"format": "envelope"}
    return event


PARTITION = PartitionInfo("localhost", "genesys-events", "$Default", "3")


def test_batch_events_as_the_worker_runtime_decodes_them() -> None:
    given = batch_input(
        [received_event(5), received_event(6)],
        PARTITION,
        argument="events",
        data_type="binary",
        function_name="f",
        capabilities=WorkerCapabilities(),
    )
    events = decoded(given)
    first = events[0]
    assert isinstance(first, func.EventHubEvent)
    assert first.get_body() == b'{"a": 1}'
    assert (first.sequence_number, first.offset, first.partition_key) == (5, 1005, "conversation-1")
    # The host passes EnqueuedTime.DateTime: a naive datetime holding UTC.
    expected = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC).replace(tzinfo=None)
    assert first.enqueued_time == expected
    metadata = first.metadata
    assert metadata is not None
    assert metadata["PartitionContext"]["PartitionId"] == "3"
    assert metadata["SequenceNumberArray"] == [5, 6]
    assert metadata["PropertiesArray"][1] == {"format": "envelope"}
    assert metadata["SystemPropertiesArray"][0]["Offset"] == 1005


def test_single_event_has_a_string_offset() -> None:
    given = single_input(
        received_event(9), PARTITION, argument="event", data_type="string", function_name="f"
    )
    event = decoded(given)
    assert (event.sequence_number, event.offset, event.partition_key) == (
        9,
        "1009",
        "conversation-1",
    )
    assert event.metadata is not None and event.metadata["SystemProperties"]["SequenceNumber"] == 9


def test_timer_ticks_as_the_worker_runtime_decodes_them() -> None:
    status = {"Last": "2026-01-01T00:00:00Z", "Next": "2026-01-01T00:01:00Z"}
    tick = decoded(TriggerInput([timer_input("timer", True, status)], {}), "timerTrigger")
    assert isinstance(tick, func.TimerRequest)
    assert tick.past_due is True


def test_dotnet_datetime_format() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
    assert dotnet_datetime(moment) == "2024-01-02T03:04:05.12"
    assert dotnet_datetime(moment.replace(microsecond=0)) == "2024-01-02T03:04:05"
