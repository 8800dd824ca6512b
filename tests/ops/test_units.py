"""Pure parts of the ops tools: lag arithmetic, naming, filters, argument checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.checkpoints import (
    Checkpoint,
    HubAddress,
    InMemoryCheckpointStore,
    Ownership,
    live_owners,
    start_checkpoint,
)
from adapters.deadletter_store import ListedLetter, day_of
from adapters.lag import LagState, compute, measure
from adapters.partitions import InMemoryHub, PartitionInfo
from adapters.settings import SettingsError, eventhub_connection, namespace_of
from ops.cli import app, load_env
from ops.deadletters import Filters
from ops.errors import NotFound, Refused, UsageError
from ops.reset import Target, Where, reset


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
    result = CliRunner().invoke(app, ["lag", "--settings", str(path), "--json"], env=env)
    assert result.exit_code == 2
    assert "EventHubConnection" in result.output
    assert "EventHubConnection" in result.stderr
    assert result.stdout == ""  # what a script parses as JSON holds no error text
    both = CliRunner().invoke(
        app, ["checkpoint", "reset", "--to", "start", "--settings", str(path)], env=env
    )
    assert both.exit_code == 2
    assert "--partition" in both.output


# ---------------------------------------------------------------------- reset, on the twins
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HUB_ADDRESS = HubAddress("localhost:5673", "genesys-events", "$Default")


def _hub(events: int, *, expired: int = 0) -> InMemoryHub:
    hub = InMemoryHub()
    hub.beginning["0"] = expired
    for n in range(events):
        hub.append("0", T0 + timedelta(seconds=n))
    hub.events["1"] = []  # an empty partition
    return hub


@pytest.mark.parametrize(
    ("where", "after", "resumes_at"),
    [
        (Where(Target.START), ("-1", -1), 0),
        (Where(Target.LATEST), ("9000", 9), 10),
        (Where(Target.SEQUENCE, sequence=4), ("3000", 3), 4),
        (Where(Target.SEQUENCE, sequence=10), ("9000", 9), 10),
        (Where(Target.TIME, time=T0 + timedelta(seconds=6, milliseconds=1)), ("6000", 6), 7),
        (Where(Target.TIME, time=T0 + timedelta(hours=1)), ("9000", 9), 10),
    ],
)
def test_reset_writes_the_checkpoint_before_where_to_resume(
    where: Where, after: tuple[str, int], resumes_at: int
) -> None:
    store = InMemoryCheckpointStore()
    (moved,) = reset(_hub(10), store, HUB_ADDRESS, where, ["0"], now=T0)
    assert (moved.after.offset, moved.after.sequence_number, moved.resumes_at) == (
        *after,
        resumes_at,
    )
    assert store.checkpoints(HUB_ADDRESS)["0"] == moved.after
    assert measure(_hub(10), store, HUB_ADDRESS)[0].lag == 10 - resumes_at


def test_reset_refuses_while_owned_names_unknown_partitions_and_bounds_sequences() -> None:
    store = InMemoryCheckpointStore(now=T0)
    store.claim(HUB_ADDRESS, "0", "host-a")
    with pytest.raises(Refused, match="held by a running consumer"):
        reset(_hub(10), store, HUB_ADDRESS, Where(Target.START), now=T0)
    dry = reset(_hub(10), store, HUB_ADDRESS, Where(Target.START), now=T0, dry_run=True)
    assert [m.partition for m in dry] == ["0", "1"] and store.checkpoints(HUB_ADDRESS) == {}
    forced = reset(_hub(10), store, HUB_ADDRESS, Where(Target.LATEST), now=T0, force=True)
    assert forced[1].after == start_checkpoint("1"), "an empty partition resumes at its start"
    with pytest.raises(NotFound, match="partition"):
        reset(_hub(10), store, HUB_ADDRESS, Where(Target.START), ["7"], now=T0)
    with pytest.raises(UsageError, match="at most"):
        reset(
            _hub(10),
            store,
            HUB_ADDRESS,
            Where(Target.SEQUENCE, sequence=11),
            ["0"],
            now=T0,
            force=True,
        )


def test_lag_flags_checkpoints_before_the_retained_events() -> None:
    store = InMemoryCheckpointStore()
    store.write(HUB_ADDRESS, Checkpoint("0", 2, "2000"))
    rows = measure(_hub(5, expired=5), store, HUB_ADDRESS)
    assert [(r.partition, r.state, r.lag) for r in rows] == [
        ("0", LagState.EXPIRED, 5),
        ("1", LagState.EMPTY, 0),
    ]


def test_the_phase_says_when_the_media_filter_has_set_a_conversation_aside() -> None:
    import orjson

    from ops.state import phase
    from transform.media import ALL_MEDIA, MediaFilter
    from transform.normalize import parse_delivery
    from transform.state import ConversationState

    note = {
        "topicName": "v2.detail.events.conversation.c.customer.start",
        "eventBody": {"conversationId": "c", "eventTime": 1_790_000_000_000, "mediaType": "EMAIL"},
    }
    state = ConversationState("c")
    for event in parse_delivery(orjson.dumps(note)).events:
        state.add(event, 1_790_000_000_000)
    voice = MediaFilter.parse("voice")
    assert phase(state, ALL_MEDIA) == "open"
    assert phase(state, voice) == (
        "open; its media type is not in INGEST_MEDIA_TYPES: it will be set aside"
    )
    state.filtered_at_ms = 1_790_000_100_000
    assert phase(state, voice) == (
        "set aside by the media filter (media type email; never written)"
    )
