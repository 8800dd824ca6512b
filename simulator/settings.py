"""The pipeline's app settings as the simulator sees them: the environment over local.settings.json.

Like `func start`, a variable set in the environment wins over the file's `Values`. The typed
readers are the pipeline's own (`functions.settings`), so `verify`, `send --eventhub` and
`replay` reach exactly the storage account and hub the Functions app uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import SettingError
from devstack.settings import expand_development_storage, load_local_settings
from functions.settings import (
    EventHubConnection,
    SettingsError,
    StorageConnection,
    eventhub_connection,
    storage_connection,
)
from simulator.errors import UsageError

DEFAULT_SETTINGS_FILE = Path("local.settings.json")
DEFAULT_RECORDS_CONTAINER = "conversations"
DEFAULT_DEADLETTER_CONTAINER = "deadletter"
DEFAULT_EVENTHUB_NAME = "genesys-events"


def environment(settings_file: Path | None = None) -> dict[str, str]:
    """`local.settings.json` Values (if the file exists) overlaid by the process environment."""
    path = settings_file or DEFAULT_SETTINGS_FILE
    try:
        values = dict(load_local_settings(path).values)
    except SettingError as e:
        raise UsageError(str(e)) from e
    values.update(os.environ)
    return values


@dataclass(frozen=True, slots=True)
class StorageTarget:
    """Where the pipeline keeps records and dead letters."""

    connection: StorageConnection
    records_container: str
    deadletter_container: str


@dataclass(frozen=True, slots=True)
class HubTarget:
    """The event hub ingest writes to."""

    connection: EventHubConnection
    eventhub_name: str


def _setting(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip()
    return value or default


def storage_target(env: Mapping[str, str]) -> StorageTarget:
    """`StateStorage`, `RECORDS_CONTAINER` and `DEADLETTER_CONTAINER` (SPEC 8)."""
    env = dict(env)
    if env.get("StateStorage"):
        env["StateStorage"] = expand_development_storage(env["StateStorage"])
    try:
        connection = storage_connection(env, "StateStorage")
    except SettingsError as e:
        msg = f"{e} (in the environment or local.settings.json, or pass --settings FILE)"
        raise UsageError(msg) from e
    return StorageTarget(
        connection,
        _setting(env, "RECORDS_CONTAINER", DEFAULT_RECORDS_CONTAINER),
        _setting(env, "DEADLETTER_CONTAINER", DEFAULT_DEADLETTER_CONTAINER),
    )


def hub_target(env: Mapping[str, str]) -> HubTarget:
    """`EventHubConnection` and `EVENTHUB_NAME` (SPEC 8)."""
    try:
        connection = eventhub_connection(env, "EventHubConnection")
    except SettingsError as e:
        msg = f"{e} (in the environment or local.settings.json, or pass --settings FILE)"
        raise UsageError(msg) from e
    return HubTarget(connection, _setting(env, "EVENTHUB_NAME", DEFAULT_EVENTHUB_NAME))
