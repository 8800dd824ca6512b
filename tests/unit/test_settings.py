"""Settings read once at the edge: defaults, identity forms, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.settings import IngestSettings, SettingsError, TransformSettings

ROOT = Path(__file__).resolve().parents[2]
LOCAL = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]


def test_the_example_settings_read_cleanly_with_the_spec_defaults() -> None:
    transform = TransformSettings.from_env(LOCAL)
    ingest = IngestSettings.from_env(LOCAL)
    assert (transform.grace_seconds, transform.idle_timeout_seconds) == (60.0, 14400.0)
    assert transform.retention_days == 7.0
    assert transform.media.keeps_all  # INGEST_MEDIA_TYPES is empty: every media type
    assert ingest.max_body_bytes == 1024 * 1024
    assert ingest.eventhub_name == "genesys-events"
    assert ingest.webhook_secret is None


def test_identity_based_storage_needs_no_secret() -> None:
    env = {
        "StateStorage__blobServiceUri": "https://acct.blob.core.windows.net",
        "EventHubConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
    }
    settings = TransformSettings.from_env(env)
    assert settings.state.connection_string is None
    assert settings.state.table_service_uri == "https://acct.table.core.windows.net"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "StateStorage"),
        ({**LOCAL, "GRACE_PERIOD_SECONDS": "soon"}, "GRACE_PERIOD_SECONDS"),
        ({**LOCAL, "PARTIAL_SNAPSHOTS": "true"}, "PARTIAL_SNAPSHOTS"),
        ({**LOCAL, "INGEST_MEDIA_TYPES": "voice,,chat"}, "INGEST_MEDIA_TYPES"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        TransformSettings.from_env(env)


def test_the_media_filter_is_read_once_as_a_plain_value() -> None:
    settings = TransformSettings.from_env({**LOCAL, "INGEST_MEDIA_TYPES": " Voice, CHAT "})
    assert settings.media.included == frozenset({"voice", "chat"})
