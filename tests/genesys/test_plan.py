"""The pure half of `ops genesys connect`: topic filters, arguments, settings, the plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.genesys_cloud import retry_after_seconds, server_message
from adapters.genesys_settings import genesys_settings
from adapters.settings import SettingsError
from ops.errors import UsageError
from ops.genesys import plan as planning
from ops.genesys.errors import WrongState
from ops.genesys.plan import Existing, desired, plan, topic_filters
from schemas.wire import TOPIC_PREFIX
from tests.genesys.partner_events import ORG, partner_event
from transform.normalize import normalize_payload
from transform.vocabulary import GENESYS_KINDS, is_known_action


def want(**overrides: str) -> planning.Desired:
    arguments = {"aws_account_id": "123456789012", "aws_region": "eu-west-1"}
    arguments.update(overrides)
    return desired(**arguments)


def existing(want_: planning.Desired, **overrides: object) -> Existing:
    fields: dict[str, object] = {
        "id": "i-1",
        "name": want_.name,
        "intended_state": "ENABLED",
        "reported_state": "ACTIVE",
        "reported_detail": None,
        "config_version": 3,
        "config_name": want_.name,
        "notes": want_.notes,
        "properties": want_.properties(),
    }
    fields.update(overrides)
    return Existing(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- topic filters
def test_topic_filters_are_every_known_kind_in_genesys_form() -> None:
    topics = topic_filters()
    assert len(topics) == len(GENESYS_KINDS) == len(set(topics))
    assert {t.removeprefix(f"{TOPIC_PREFIX}{{id}}.") for t in topics} == GENESYS_KINDS
    assert list(topics) == sorted(topics)
    assert "v2.detail.events.conversation.{id}.customer.end" in topics


@pytest.mark.parametrize("topic", topic_filters())
def test_every_subscribed_topic_is_a_known_kind_to_the_transform(topic: str) -> None:
    """An event of each subscribed topic, as EventBridge delivers it, is one known micro-event."""
    payload = partner_event(topic=topic)
    events, rejection = normalize_payload(payload)
    assert rejection is None
    assert len(events) == 1
    assert events[0].kind == topic.rsplit("{id}.", 1)[1]
    assert is_known_action(events[0].action, envelope=False)


# ---------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aws_account_id": "12345678901"}, "not 12 digits"),
        ({"aws_account_id": "12345678901a"}, "not 12 digits"),
        ({"aws_region": "Ireland"}, "not a region code"),
        ({"event_source_suffix": "has space"}, "1 to 64 letters"),
        ({"event_source_suffix": "x" * 65}, "1 to 64 letters"),
        ({"event_source_suffix": ""}, "1 to 64 letters"),
        ({"name": " padded"}, "edge spaces"),
        ({"name": ""}, "non-empty"),
    ],
)
def test_bad_arguments_are_named(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        want(**overrides)


def test_the_properties_are_those_cx_as_code_sets() -> None:
    assert want(event_source_suffix="genesys.prod_1").properties() == {
        "awsAccountId": "123456789012",
        "awsAccountRegion": "eu-west-1",
        "eventSourceSuffix": "genesys.prod_1",
        "eventFilter": list(topic_filters()),
    }


def test_the_partner_event_source_name() -> None:
    assert planning.partner_event_source_name(ORG, "conversation-events") == (
        f"aws.partner/genesys.com/cloud/{ORG}/conversation-events"
    )


# ---------------------------------------------------------------------- settings
BASE = {"GENESYS_CLOUD_CLIENT_ID": "id", "GENESYS_CLOUD_CLIENT_SECRET": "secret"}


def test_settings_read_the_sdk_names() -> None:
    settings = genesys_settings({**BASE, "GENESYS_CLOUD_REGION": "eu-west-1"})
    assert (settings.client_id, settings.client_secret, settings.region) == (
        "id",
        "secret",
        "eu-west-1",
    )
    assert settings.base_url is None
    assert "secret" not in repr(settings)
    local = genesys_settings({**BASE, "GENESYS_CLOUD_BASE_URL": "http://127.0.0.1:8080/"})
    assert local.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GENESYS_CLOUD_REGION": "eu-west-1"},
            "GENESYS_CLOUD_CLIENT_ID and GENESYS_CLOUD_CLIENT_SECRET not set",
        ),
        ({**BASE}, "GENESYS_CLOUD_REGION not set"),
        (
            {**BASE, "GENESYS_CLOUD_REGION": "eu-west-1", "GENESYS_CLOUD_BASE_URL": "https://a.b"},
            "not both",
        ),
        ({**BASE, "GENESYS_CLOUD_REGION": "mypurecloud.ie"}, "not a region code"),
        ({**BASE, "GENESYS_CLOUD_BASE_URL": "api.mypurecloud.ie"}, "not an http"),
        ({**BASE, "GENESYS_CLOUD_BASE_URL": "https://api.mypurecloud.ie/api/v2"}, "no path"),
        ({**BASE, "GENESYS_CLOUD_BASE_URL": "http://api.mypurecloud.ie"}, "only for a local fake"),
    ],
)
def test_bad_settings_say_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        genesys_settings(env)


# ---------------------------------------------------------------------- the plan
def test_nothing_there_plans_create_configure_enable() -> None:
    steps = plan(want(), None)
    assert steps.create and steps.enable and not steps.is_noop
    assert {c.field for c in steps.config_changes} == {
        "awsAccountId", "awsAccountRegion", "eventSourceSuffix", "eventFilter", "name", "notes",
    }  # fmt: skip
    assert steps.steps()[0] == "create an amazon-eventbridge-source integration"
    assert steps.steps()[-1] == "set intendedState ENABLED"


def test_as_desired_plans_nothing_whatever_the_filter_order() -> None:
    target = want()
    have = existing(
        target, properties={**target.properties(), "eventFilter": list(reversed(topic_filters()))}
    )
    steps = plan(target, have)
    assert steps.is_noop and steps.steps() == []


def test_drifted_topics_and_a_disabled_integration_are_planned_back() -> None:
    target = want()
    topics = [*topic_filters()[2:], "v2.detail.events.conversation.{id}.gone"]
    have = existing(
        target, intended_state="DISABLED", properties={**target.properties(), "eventFilter": topics}
    )
    steps = plan(target, have)
    assert [c.field for c in steps.config_changes] == ["eventFilter"]
    described = steps.config_changes[0].describe()
    assert (
        f"+{topic_filters()[0]}" in described
        and "-v2.detail.events.conversation.{id}.gone" in described
    )
    assert steps.enable and steps.integration_id == "i-1"


def test_unknown_properties_are_kept_when_merging() -> None:
    target = want()
    have = existing(target, properties={"someFutureKey": True, "awsAccountId": "000000000000"})
    merged = planning.merged_properties(have, target)
    assert merged["someFutureKey"] is True and merged["awsAccountId"] == "123456789012"


@pytest.mark.parametrize("state", ["ACTIVATING", "DEACTIVATING"])
def test_a_settling_integration_is_left_alone(state: str) -> None:
    with pytest.raises(WrongState, match=f"is {state}"):
        plan(want(), existing(want(), reported_state=state))


def test_moving_to_another_source_needs_consent() -> None:
    target = want(event_source_suffix="other")
    have = existing(want())
    with pytest.raises(WrongState, match="--allow-source-change"):
        plan(target, have)
    steps = plan(target, have, allow_source_change=True)
    assert [c.field for c in steps.config_changes] == ["eventSourceSuffix"]


def test_an_enabled_integration_in_error_with_nothing_to_change_is_reported() -> None:
    have = existing(want(), reported_state="ERROR", reported_detail="account not allowed")
    with pytest.raises(WrongState, match="account not allowed"):
        plan(want(), have)


# ---------------------------------------------------------------------- adapter helpers
NOW = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("Sun, 01 Mar 2026 10:00:07 GMT", 7.0),
        ("Sun, 01 Mar 2026 09:59:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_retry_after_is_seconds_or_a_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_server_messages_read_genesys_and_oauth_bodies() -> None:
    assert server_message('{"message": "Nope", "code": "missing.any.permissions"}') == (
        "Nope (missing.any.permissions)"
    )
    assert server_message(
        '{"error": "invalid_client", "error_description": "authentication failed"}'
    ) == ("authentication failed (invalid_client)")
    assert server_message("") == "no message"
    assert server_message("<html>bad gateway</html>") == "<html>bad gateway</html>"
