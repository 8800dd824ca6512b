"""Settings read once at the edge: defaults, identity forms, and clear refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.settings import (
    DeadLetterRetention,
    IngestSettings,
    PiiSettings,
    SettingsError,
    TransformSettings,
)
from transform.pii import PiiPolicy, RecordPii

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
        # float() reads these, and both pass a `>= 0` check (nan compares False to all).
        ({**LOCAL, "GRACE_PERIOD_SECONDS": "nan"}, "GRACE_PERIOD_SECONDS must be a finite"),
        ({**LOCAL, "STATE_RETENTION_DAYS": "inf"}, "STATE_RETENTION_DAYS must be a finite"),
        ({**LOCAL, "PARTIAL_SNAPSHOTS": "true"}, "PARTIAL_SNAPSHOTS"),
        ({**LOCAL, "INGEST_MEDIA_TYPES": "voice,,chat"}, "INGEST_MEDIA_TYPES"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        TransformSettings.from_env(env)


# ---------------------------------------------------------------------- personal data
def test_the_example_keeps_numbers_and_purges_dead_letters_by_timer() -> None:
    transform = TransformSettings.from_env(LOCAL)
    assert transform.pii.mode is RecordPii.KEEP
    assert transform.pii.key_bytes == LOCAL["RECORD_PII_KEY"].encode()
    assert transform.deadletter_retention == DeadLetterRetention(30.0, purge_by_timer=True)
    azure = {k: v for k, v in LOCAL.items() if k not in ("DEADLETTER_PURGE", "RECORD_PII_KEY")}
    defaults = TransformSettings.from_env(azure)
    assert defaults.deadletter_retention.purge_by_timer is False, "Azure: the lifecycle rule"
    assert defaults.pii.key is None and defaults.pii.policy == PiiPolicy()


def test_hash_reads_its_key_and_never_shows_it() -> None:
    key = "k" * 40
    settings = PiiSettings.from_env({"RECORD_PII": "HASH", "RECORD_PII_KEY": f" {key} "})
    assert settings.mode is RecordPii.HASH
    assert settings.policy == PiiPolicy(RecordPii.HASH, key.encode())
    assert key not in repr(settings) and key not in repr(settings.policy)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECORD_PII": "mask"}, "RECORD_PII must be keep, hash or drop"),
        ({"RECORD_PII": "hash"}, "RECORD_PII=hash needs a key: set RECORD_PII_KEY"),
        ({"RECORD_PII": "hash", "RECORD_PII_KEY": "short"}, "at least 32 characters, it holds 5"),
        (
            {
                "RECORD_PII": "hash",
                "RECORD_PII_KEY": "@Microsoft.KeyVault(VaultName=kv-x;SecretName=record-pii-key)",
            },
            "Key Vault reference the platform did not resolve",
        ),
        ({"DEADLETTER_PURGE": "lifecycle"}, "DEADLETTER_PURGE must be off"),
        ({"DEADLETTER_RETENTION_DAYS": "-1"}, "DEADLETTER_RETENTION_DAYS must be >= 0"),
    ],
)
def test_bad_personal_data_settings_are_refused_saying_what_to_set(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as refused:
        TransformSettings.from_env({**LOCAL, "RECORD_PII_KEY": "", **env})
    assert "short" not in str(refused.value), "a key is never part of a message"


def test_a_key_file_overrides_the_environment_and_must_hold_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("f" * 32 + "\n", encoding="utf-8")
    env = {"RECORD_PII": "keep", "RECORD_PII_KEY": "e" * 32}
    read = PiiSettings.from_env(env, mode="hash", key_file=key_file)
    assert (read.mode, read.key_bytes) == (RecordPii.HASH, b"f" * 32)
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="is empty"):
        PiiSettings.from_env(env, key_file=tmp_path / "empty")
    with pytest.raises(SettingsError, match="cannot read the key file"):
        PiiSettings.from_env(env, key_file=tmp_path / "missing")


def test_the_media_filter_is_read_once_as_a_plain_value() -> None:
    settings = TransformSettings.from_env({**LOCAL, "INGEST_MEDIA_TYPES": " Voice, CHAT "})
    assert settings.media.included == frozenset({"voice", "chat"})


def test_usable_cores_follow_the_process_affinity() -> None:
    """Under `taskset` (or a container's cpuset) the replay's default workers fit the cores
    the process may use, not the machine's count."""
    code = "from adapters.settings import usable_cores; print(usable_cores())"
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert pinned.stdout.strip() == "1"
