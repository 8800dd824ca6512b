"""Pure parts of the ops tools: lag arithmetic, naming, filters, argument checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.checkpoints import Checkpoint, HubAddress, Ownership, live_owners, start_checkpoint
from adapters.deadletter_store import ListedLetter, day_of
from adapters.lag import LagState, compute
from adapters.partitions import PartitionInfo
from adapters.settings import SettingsError, eventhub_connection, namespace_of
from ops.cli import app, load_env
from ops.deadletters import Filters
from ops.errors import UsageError
from ops.reset import Target, Where


def info(first: int, last: int, *, empty: bool = False) -> PartitionInfo:
    return PartitionInfo("0", first, last, str(last * 100), None, empty)


@pytest.mark.parametrize(
    ("partition", "checkpoint", "lag", "state"),
    [
        (info(0, 99), None, 100, LagState.NO_CHECKPOINT),
        (info(0, 99), Checkpoint("0", 89, "8900"), 10, LagState.OK),
        (info(0, 99), Checkpoint("0", 99, "9900"), 0, LagState.OK),
        (info(0, 99), start_checkpoint("0"), 100, LagState.OK),
        (info(0, 99), Checkpoint("0", 150, "15000"), 100, LagState.AHEAD),
        (info(50, 99), Checkpoint("0", 10, "1000"), 50, LagState.EXPIRED),
        (info(50, 99), Checkpoint("0", 49, "4900"), 50, LagState.OK),
        (info(0, -1, empty=True), None, 0, LagState.EMPTY),
        (info(0, -1, empty=True), Checkpoint("0", 5, "500"), 0, LagState.AHEAD),
    ],
)
def test_lag_arithmetic(
    partition: PartitionInfo, checkpoint: Checkpoint | None, lag: int, state: LagState
) -> None:
    measured = compute(partition, checkpoint)
    assert (measured.lag, measured.state) == (lag, state)


def test_checkpoint_names_are_the_sdk_layout_in_lower_case() -> None:
    address = HubAddress("NS.servicebus.windows.net", "Genesys-Events", "$Default")
    assert address.checkpoint_blob("3") == (
        "ns.servicebus.windows.net/genesys-events/$default/checkpoint/3"
    )
    assert address.prefix("ownership").endswith("/$default/ownership/")


def test_namespace_of_identity_and_connection_strings() -> None:
    identity = eventhub_connection(
        {"EventHubConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net"},
        "EventHubConnection",
    )
    assert namespace_of(identity) == "ns.servicebus.windows.net"
    emulator = eventhub_connection(
        {
            "EventHubConnection": "Endpoint=sb://localhost:5673;SharedAccessKeyName=x;SharedAccessKey=y"
        },
        "EventHubConnection",
    )
    assert namespace_of(emulator) == "localhost:5673"
    broken = eventhub_connection({"EventHubConnection": "SharedAccessKey=y"}, "EventHubConnection")
    with pytest.raises(SettingsError, match="no Endpoint=sb://"):
        namespace_of(broken)


def test_live_owners_ignore_released_and_expired_claims() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    owners = {
        "0": Ownership("0", "host-a", now - timedelta(seconds=5)),
        "1": Ownership("1", "", now),
        "2": Ownership("2", "host-b", now - timedelta(minutes=5)),
    }
    assert [o.partition for o in live_owners(owners, now)] == ["0"]


def test_where_checks_its_value() -> None:
    with pytest.raises(UsageError, match="aware time"):
        Where(Target.TIME)
    with pytest.raises(UsageError, match="got -1"):
        Where(Target.SEQUENCE, sequence=-1)
    assert Where(Target.SEQUENCE, sequence=0).sequence == 0


def test_dead_letter_filters() -> None:
    item = ListedLetter(
        "transform/2026/11/02/x.json", "transform", "invalid-json", "x", None, 1, None
    )
    item = ListedLetter(
        item.name, item.stage, item.reason, item.deadletter_id, day_of(item.name), 1, None
    )
    assert item.day == date(2026, 11, 2)
    assert Filters(stage="transform").keep(item)
    assert not Filters(stage="ingest").keep(item)
    assert not Filters(reason="other").keep(item)
    assert Filters(since=date(2026, 11, 2), until=date(2026, 11, 2)).keep(item)
    assert not Filters(since=date(2026, 11, 3)).keep(item)
    assert not Filters(replayed=True).keep(item)
    assert Filters(stage="ingest", since=date(2026, 1, 2), until=date(2026, 1, 2)).prefix() == (
        "ingest/2026/01/02/"
    )
    assert day_of("ingest/undated/x.json") is None
    with pytest.raises(UsageError, match="stage must be one of"):
        Filters(stage="bogus")
    with pytest.raises(UsageError, match="is after"):
        Filters(since=date(2026, 1, 2), until=date(2026, 1, 1))


def test_environment_wins_over_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text('{"Values": {"EVENTHUB_NAME": "from-file", "X_ONLY_FILE": "1"}}')
    monkeypatch.setenv("EVENTHUB_NAME", "from-env")
    env = load_env(path)
    assert env["EVENTHUB_NAME"] == "from-env"
    assert env["X_ONLY_FILE"] == "1"
    with pytest.raises(SettingsError, match="does not exist"):
        load_env(tmp_path / "missing.json")


def test_cli_names_the_missing_setting(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text('{"Values": {}}')
    env = {"EventHubConnection": "", "AzureWebJobsStorage": ""}
    result = CliRunner().invoke(app, ["lag", "--settings", str(path)], env=env)
    assert result.exit_code == 2
    assert "EventHubConnection" in result.output
    both = CliRunner().invoke(
        app, ["checkpoint", "reset", "--to", "start", "--settings", str(path)], env=env
    )
    assert both.exit_code == 2
    assert "--partition" in both.output
