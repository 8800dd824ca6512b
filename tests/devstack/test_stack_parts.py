"""The Stack API: clear start errors, and hosts surviving emulator and Azurite restarts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from azure.eventhub import EventHubConsumerClient

from devstack.errors import PartStartError, PortInUseError
from devstack.settings import LOOPBACK
from devstack.stack import Stack, StackPorts
from tests.conftest import ROOT, HostStarter
from tests.devstack.helpers import echo_env, produce, records, wait_until

pytestmark = pytest.mark.stack


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = StackPorts.free()
        stack = Stack(
            ROOT, ports=StackPorts(**{**ports.__dict__, "table": taken}), state_dir=tmp_path
        )
        with pytest.raises(PortInUseError, match=rf"port {taken} \(Azurite Table\).*in use"):
            stack.start_azurite()
    assert stack.status()[0].healthy is False


def test_a_part_that_dies_while_starting_shows_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.config.json"
    broken.write_text("{ not json", encoding="utf-8")
    stack = Stack(ROOT, ports=StackPorts.free(), state_dir=tmp_path, eventhubs_config=broken)
    with pytest.raises(PartStartError) as raised:
        stack.start_eventhubs()
    message = str(raised.value)
    assert "eventhubs exited while starting" in message
    assert str(broken) in message  # the emulator's own complaint, from the log tail


def test_the_emulator_takes_the_key_the_stack_hands_out_whatever_the_shell_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUBS_SAS_KEY", "a-key-no-connection-string-carries")
    stack = Stack(ROOT, ports=StackPorts.free(), state_dir=tmp_path)
    try:
        stack.start_eventhubs()
        with EventHubConsumerClient.from_connection_string(
            stack.eventhub_connection_string, "$Default", eventhub_name="genesys-events"
        ) as client:
            assert client.get_partition_ids()
    finally:
        stack.stop_eventhubs()


def test_host_recovers_after_emulator_and_azurite_restarts(
    local_stack: Stack, start_hosts: HostStarter, tmp_path: Path
) -> None:
    stack = start_hosts(env=echo_env(tmp_path, "echo-basic"))

    def delivered(tag: str, count: int) -> bool:
        return (
            sum(json.loads(r["body"]).get("tag") == tag for r in records(tmp_path, "record_batch"))
            >= count
        )

    produce(stack, "echo-basic", {"a": [{"tag": "before"} for _ in range(5)]})
    wait_until(lambda: delivered("before", 5), 30, "events before the faults")
    try:
        local_stack.stop_eventhubs()
        assert not local_stack.eventhubs_healthy()
        local_stack.start_eventhubs()
        produce(stack, "echo-basic", {"b": [{"tag": "after-emulator"} for _ in range(5)]})
        wait_until(lambda: delivered("after-emulator", 5), 45, "events after the emulator restart")

        local_stack.stop_azurite()  # SIGTERM: Azurite saves its data (SIGKILL may lose some)
        local_stack.start_azurite()
        produce(stack, "echo-basic", {"c": [{"tag": "after-azurite"} for _ in range(5)]})
        wait_until(lambda: delivered("after-azurite", 5), 45, "events after the Azurite restart")
    finally:
        local_stack.start_eventhubs()
        local_stack.start_azurite()
    assert stack.host_healthy(0)
