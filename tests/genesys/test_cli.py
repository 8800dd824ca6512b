"""`python -m ops genesys connect` end to end: the CLI, the SDK, the fake Genesys API."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner, Result

from ops.cli import app
from tests.genesys.conftest import CLIENT_ID, CLIENT_SECRET
from tests.genesys.fake_genesys import EVENTBRIDGE, VIEW, FakeGenesys, Stored

ARGS = ["genesys", "connect", "--aws-account-id", "123456789012", "--aws-region", "eu-west-1"]


@pytest.fixture
def run(fake: FakeGenesys, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("GENESYS_CLOUD_REGION", "GENESYS_CLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*extra: str, client: tuple[str, str] = (CLIENT_ID, CLIENT_SECRET)) -> Result:
        env = {
            "GENESYS_CLOUD_CLIENT_ID": client[0],
            "GENESYS_CLOUD_CLIENT_SECRET": client[1],
            "GENESYS_CLOUD_BASE_URL": fake.base_url,
        }
        return CliRunner().invoke(app, [*ARGS, *extra], env=env)

    return invoke


def test_connect_then_again_then_dry_run(fake: FakeGenesys, run) -> None:  # type: ignore[no-untyped-def]
    source = f"aws.partner/genesys.com/cloud/{fake.org_id}/conversation-events"

    first = run()
    assert first.exit_code == 0, first.output
    assert (
        "did:" in first.output and "create an amazon-eventbridge-source integration" in first.output
    )
    assert f"partner event source: {source}" in first.output
    assert f"PartnerEventSourceName={source}" in first.output

    second = run("--json")
    assert second.exit_code == 0, second.output
    report = orjson.loads(second.stdout)
    assert report["changed"] is False and report["steps"] == []
    assert report["integration"]["reported_state"] == "ACTIVE"
    assert report["partner_event_source"] == source

    [stored] = fake.integrations.values()
    stored.properties = {
        **stored.properties,
        "eventFilter": ["v2.detail.events.conversation.{id}.acw"],
    }
    writes = len(fake.writes())
    dry = run("--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = orjson.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["changed"] is False
    assert planned["steps"][0].startswith(
        "set eventFilter: +v2.detail.events.conversation.{id}.acd.end"
    )
    assert len(fake.writes()) == writes


@pytest.mark.parametrize(
    ("setup", "code", "said"),
    [
        ("bad-secret", 7, "refused the OAuth client credentials"),
        ("view-only", 7, "needs the permission integrations:integration:add"),
        ("activating", 4, "is ACTIVATING"),
        ("bad-account", 2, "not 12 digits"),
    ],
)
def test_errors_map_to_exit_codes(  # type: ignore[no-untyped-def]
    fake: FakeGenesys, run, setup: str, code: int, said: str
) -> None:
    extra: tuple[str, ...] = ("--aws-account-id", "42") if setup == "bad-account" else ()
    client = (CLIENT_ID, CLIENT_SECRET)
    if setup == "bad-secret":
        client = (CLIENT_ID, "wrong")
    elif setup == "view-only":
        fake.add_client("viewer", "v", frozenset({VIEW}))
        client = ("viewer", "v")
    elif setup == "activating":
        fake.add_integration(
            Stored("s-1", EVENTBRIDGE, "ENABLED", "ACTIVATING", name="Conversation events to Azure")
        )
    result = run(*extra, client=client)
    assert result.exit_code == code, result.output
    assert said in " ".join(result.output.split())


def test_missing_credentials_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENESYS_CLOUD_CLIENT_ID", "GENESYS_CLOUD_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ARGS, env={"GENESYS_CLOUD_REGION": "eu-west-1"})
    assert result.exit_code == 2
    assert "GENESYS_CLOUD_CLIENT_ID and GENESYS_CLOUD_CLIENT_SECRET not set" in result.output
