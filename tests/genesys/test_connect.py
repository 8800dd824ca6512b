"""`connect` with the real Genesys Cloud SDK against the local fake of the Genesys API."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace

import pytest

from adapters.errors import Unreachable
from adapters.genesys_cloud import (
    AmbiguousName,
    Denied,
    GenesysCloudIntegrations,
    RateLimited,
    api_host,
)
from adapters.genesys_settings import GenesysSettings
from adapters.settings import SettingsError
from ops.genesys import plan as planning
from ops.genesys.cli import genesys_exit
from ops.genesys.errors import WrongState
from ops.genesys.service import connect
from tests.genesys.conftest import CLIENT_ID, Sleeps
from tests.genesys.fake_genesys import ADD, EDIT, EVENTBRIDGE, VIEW, FakeGenesys, Stored

Login = Callable[..., GenesysCloudIntegrations]

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def want(**overrides: str) -> planning.Desired:
    arguments = {"aws_account_id": ACCOUNT, "aws_region": REGION}
    arguments.update(overrides)
    return planning.desired(**arguments)


def seed(fake: FakeGenesys, **overrides: object) -> Stored:
    """An integration as a previous run (or a person in the UI) left it."""
    target = want()
    fields: dict[str, object] = {
        "id": f"seeded-{len(fake.integrations) + 1}",
        "type_id": EVENTBRIDGE,
        "intended_state": "ENABLED",
        "reported_code": "ACTIVE",
        "version": 4,
        "name": target.name,
        "notes": target.notes,
        "properties": target.properties(),
    }
    fields.update(overrides)
    return fake.add_integration(Stored(**fields))  # type: ignore[arg-type]


def writes(fake: FakeGenesys) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.writes()]


# ---------------------------------------------------------------------- create, update, no-op
def test_connect_creates_configures_and_enables(fake: FakeGenesys, login: Login) -> None:
    outcome = connect(login(), want(), dry_run=False)

    [stored] = fake.integrations.values()
    assert writes(fake) == [
        ("POST", "/api/v2/integrations"),
        ("PUT", f"/api/v2/integrations/{stored.id}/config/current"),
        ("PATCH", f"/api/v2/integrations/{stored.id}"),
    ]
    post, put, patch = fake.writes()
    assert post.body == {"integrationType": {"id": EVENTBRIDGE}, "name": planning.DEFAULT_NAME}
    assert put.body["version"] == 1
    assert put.body["properties"] == {
        "awsAccountId": ACCOUNT,
        "awsAccountRegion": REGION,
        "eventSourceSuffix": "conversation-events",
        "eventFilter": list(planning.topic_filters()),
    }
    assert patch.body == {"intendedState": "ENABLED"}
    assert (stored.intended_state, stored.reported_code) == ("ENABLED", "ACTIVE")
    assert stored.name == planning.DEFAULT_NAME and stored.notes == planning.MANAGED_NOTE
    token = next(r for r in fake.requests if r.path == "/oauth/token")
    assert token.body == {"grant_type": "client_credentials"}
    assert outcome.partner_event_source == (
        f"aws.partner/genesys.com/cloud/{fake.org_id}/conversation-events"
    )
    assert outcome.integration is not None and outcome.integration.id == stored.id
    assert outcome.plan.create and not outcome.dry_run


def test_a_second_run_changes_nothing(fake: FakeGenesys, login: Login) -> None:
    connect(login(), want(), dry_run=False)
    before = writes(fake)
    outcome = connect(login(), want(), dry_run=False)
    assert writes(fake) == before
    assert outcome.plan.is_noop
    assert outcome.integration is not None and outcome.integration.reported_state == "ACTIVE"


def test_drifted_filters_are_put_back_keeping_other_properties(
    fake: FakeGenesys, login: Login
) -> None:
    target = want()
    drifted = [*planning.topic_filters()[3:], "v2.conversations.{id}.transcription"]
    stored = seed(fake, properties={**target.properties(), "eventFilter": drifted, "extra": 1})

    outcome = connect(login(), target, dry_run=False)

    assert writes(fake) == [("PUT", f"/api/v2/integrations/{stored.id}/config/current")]
    assert fake.writes()[0].body["version"] == 4
    assert stored.properties["eventFilter"] == list(planning.topic_filters())
    assert stored.properties["extra"] == 1
    assert [c.field for c in outcome.plan.config_changes] == ["eventFilter"]


def test_a_disabled_integration_is_enabled_only(fake: FakeGenesys, login: Login) -> None:
    stored = seed(fake, intended_state="DISABLED", reported_code="INACTIVE")
    connect(login(), want(), dry_run=False)
    assert writes(fake) == [("PATCH", f"/api/v2/integrations/{stored.id}")]
    assert stored.reported_code == "ACTIVE"


def test_integrations_of_other_types_or_names_are_not_touched(
    fake: FakeGenesys, login: Login
) -> None:
    other_type = seed(fake, type_id="purecloud-data-actions", properties={})
    other_name = seed(fake, name="Something else", properties={})
    for n in range(120):  # more than one page of the listing
        seed(fake, id=f"filler-{n}", name=f"filler {n}", properties={})
    connect(login(), want(), dry_run=False)
    created = [s for s in fake.integrations.values() if s.name == planning.DEFAULT_NAME]
    assert len(created) == 2 and other_type in created
    assert other_name.properties == {}
    assert ("POST", "/api/v2/integrations") in writes(fake)
    pages = [
        r.query["pageNumber"]
        for r in fake.requests
        if (r.method, r.path) == ("GET", "/api/v2/integrations")
    ]
    assert pages[:2] == [["1"], ["2"]]


def test_a_found_integration_on_a_later_page_is_updated(fake: FakeGenesys, login: Login) -> None:
    for n in range(150):
        seed(fake, id=f"filler-{n}", name=f"filler {n}", properties={})
    stored = seed(fake, intended_state="DISABLED", reported_code="INACTIVE")
    connect(login(), want(), dry_run=False)
    assert writes(fake) == [("PATCH", f"/api/v2/integrations/{stored.id}")]


def test_a_stale_version_is_read_again_once(fake: FakeGenesys, login: Login) -> None:
    stored = seed(fake, properties={**want().properties(), "eventFilter": ["v2.x.{id}.y"]})
    fake.conflicts = 1
    connect(login(), want(), dry_run=False)
    puts = [r for r in fake.writes() if r.method == "PUT"]
    assert [p.body["version"] for p in puts] == [4, 5]
    assert stored.properties["eventFilter"] == list(planning.topic_filters())


# ---------------------------------------------------------------------- dry run
def test_dry_run_writes_nothing_and_says_what_it_would_do(fake: FakeGenesys, login: Login) -> None:
    outcome = connect(login(), want(), dry_run=True)
    assert writes(fake) == [] and fake.integrations == {}
    assert outcome.dry_run and outcome.integration is None
    assert outcome.plan.steps()[0] == "create an amazon-eventbridge-source integration"
    assert outcome.partner_event_source.endswith(f"/{fake.org_id}/conversation-events")


def test_dry_run_on_a_drifted_integration_needs_only_view(
    fake: FakeGenesys, settings: GenesysSettings, login: Login
) -> None:
    fake.add_client("viewer", "v", frozenset({VIEW}))
    seed(fake, intended_state="DISABLED", properties={**want().properties(), "eventFilter": []})
    viewer = replace(settings, client_id="viewer", client_secret="v")
    outcome = connect(login(settings=viewer), want(), dry_run=True)
    assert writes(fake) == []
    assert outcome.plan.enable and [c.field for c in outcome.plan.config_changes] == ["eventFilter"]


# ---------------------------------------------------------------------- refusals
def test_bad_credentials_name_the_settings(fake: FakeGenesys, settings: GenesysSettings) -> None:
    wrong = replace(settings, client_secret="wrong")
    with pytest.raises(
        Denied, match="GENESYS_CLOUD_CLIENT_ID and GENESYS_CLOUD_CLIENT_SECRET"
    ) as e:
        GenesysCloudIntegrations.login(wrong)
    assert "authentication failed (invalid_client)" in str(e.value)
    assert genesys_exit(e.value) == 7


@pytest.mark.parametrize(
    ("granted", "seeded", "missing"),
    [
        (frozenset(), False, VIEW),
        (frozenset({VIEW}), False, ADD),
        (frozenset({VIEW, ADD}), True, EDIT),
    ],
)
def test_a_missing_permission_is_named(
    fake: FakeGenesys, login: Login, granted: frozenset[str], seeded: bool, missing: str
) -> None:
    fake.add_client("limited", "l", granted)
    if seeded:
        seed(fake, intended_state="DISABLED")
    limited = GenesysSettings("limited", "l", None, fake.base_url)
    with pytest.raises(Denied, match=f"needs the permission {missing}") as e:
        connect(login(settings=limited), want(), dry_run=False)
    assert "missing.any.permissions" in str(e.value)
    assert "Roles" in str(e.value)


def test_a_revoked_token_is_reported(fake: FakeGenesys, login: Login) -> None:
    port = login()
    fake._tokens.clear()  # the token stops being valid after login
    with pytest.raises(Denied, match=r"refused the access token .*bad\.credentials"):
        connect(port, want(), dry_run=False)


# ---------------------------------------------------------------------- rate limits
def test_429_honours_retry_after(fake: FakeGenesys, login: Login, sleeps: Sleeps) -> None:
    told: list[tuple[str, float]] = []
    port = login(on_wait=lambda endpoint, seconds: told.append((endpoint, seconds)))
    fake.throttle.extend(["2", "1"])
    outcome = connect(port, want(), dry_run=False)
    assert sleeps.waits == [2.0, 1.0]
    assert told == [
        ("GET /api/v2/organizations/me", 2.0),
        ("GET /api/v2/organizations/me", 1.0),
    ]
    assert outcome.integration is not None and outcome.integration.reported_state == "ACTIVE"
    asked = [r.path for r in fake.requests if r.path == "/api/v2/organizations/me"]
    assert len(asked) == 3  # the SDK's transport did not retry on its own


def test_429_without_retry_after_backs_off(fake: FakeGenesys, login: Login, sleeps: Sleeps) -> None:
    port = login()
    fake.throttle.extend([None, None])
    connect(port, want(), dry_run=True)
    assert sleeps.waits == [1.0, 2.0]


def test_429_asking_too_long_is_reported_not_slept(
    fake: FakeGenesys, login: Login, sleeps: Sleeps
) -> None:
    port = login()
    fake.throttle.append("3600")
    with pytest.raises(RateLimited, match="asks to wait 3600 s") as e:
        connect(port, want(), dry_run=False)
    assert sleeps.waits == [] and genesys_exit(e.value) == 5


def test_429_that_never_ends_gives_up(fake: FakeGenesys, login: Login, sleeps: Sleeps) -> None:
    port = login(max_attempts=3)
    fake.throttle.extend(["1"] * 10)
    with pytest.raises(RateLimited, match="after 3 attempts"):
        connect(port, want(), dry_run=False)
    assert sleeps.waits == [1.0, 1.0]
    assert writes(fake) == []


# ---------------------------------------------------------------------- wrong states
@pytest.mark.parametrize("state", ["ACTIVATING", "DEACTIVATING"])
def test_a_settling_integration_is_refused(fake: FakeGenesys, login: Login, state: str) -> None:
    seed(fake, reported_code=state, properties={})
    with pytest.raises(WrongState, match=state) as e:
        connect(login(), want(), dry_run=False)
    assert e.value.exit_code == 4 and writes(fake) == []


def test_an_error_reported_after_enabling_is_refused_with_the_detail(
    fake: FakeGenesys, login: Login
) -> None:
    seed(fake, name="Another team's integration")  # enabled, same account, region and suffix
    with pytest.raises(WrongState, match="already exists in account 123456789012"):
        connect(login(), want(), dry_run=False)


def test_an_enabled_integration_in_error_is_not_rewritten(fake: FakeGenesys, login: Login) -> None:
    seed(fake, reported_code="ERROR", reported_detail="Invalid AWS account")
    with pytest.raises(WrongState, match="Invalid AWS account"):
        connect(login(), want(), dry_run=False)
    assert writes(fake) == []


def test_moving_the_source_needs_the_flag(fake: FakeGenesys, login: Login) -> None:
    stored = seed(fake)
    with pytest.raises(WrongState, match="--allow-source-change"):
        connect(login(), want(event_source_suffix="moved"), dry_run=False)
    assert writes(fake) == []
    connect(login(), want(event_source_suffix="moved"), dry_run=False, allow_source_change=True)
    assert stored.properties["eventSourceSuffix"] == "moved"


def test_two_integrations_with_the_name_are_ambiguous(fake: FakeGenesys, login: Login) -> None:
    first, second = seed(fake), seed(fake)
    with pytest.raises(AmbiguousName, match=f"{first.id}, {second.id}") as e:
        connect(login(), want(), dry_run=False)
    assert genesys_exit(e.value) == 4


# ---------------------------------------------------------------------- where the API is
def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = GenesysSettings(CLIENT_ID, "x", None, f"http://127.0.0.1:{port}")
    with pytest.raises(Unreachable, match=f"127.0.0.1:{port} did not answer POST /oauth/token"):
        GenesysCloudIntegrations.login(closed, timeout_seconds=2)


def test_regions_map_to_the_sdk_hosts() -> None:
    import PureCloudPlatformClientV2 as sdk

    def host(region: str) -> str:
        return api_host(sdk, GenesysSettings("i", "s", region, None))

    assert host("eu-west-1") == "https://api.mypurecloud.ie"
    assert host("us-east-1") == "https://api.mypurecloud.com"
    with pytest.raises(
        SettingsError, match=r"not a Genesys Cloud region this SDK knows: .*eu-west-1"
    ):
        host("xx-nowhere-1")
