"""The app's own settings, read for the ops tools (the same names as the function app).

The CLI reads them from the environment over `local.settings.json` `Values` (the environment
wins, as under `func start`); the function app's probe reads its app settings. The parsing is
`functions.settings`', so a setting the app accepts, the tools accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from functions.settings import (
    EventHubConnection,
    IngestSettings,
    SettingsError,
    StorageConnection,
    TransformSettings,
    eventhub_connection,
    storage_connection,
)
from ops.errors import ConfigError

DEFAULT_EVENTHUB_NAME = "genesys-events"
DEFAULT_CONSUMER_GROUP = "$Default"
HOST_STORAGE = "AzureWebJobsStorage"


def _value(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip()
    return value or default


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Where the consumer reads (the trigger's hub and group) and keeps its checkpoints."""

    eventhub: EventHubConnection
    eventhub_name: str
    consumer_group: str
    host_storage: StorageConnection

    @property
    def namespace(self) -> str:
        """The namespace as the checkpoint store names it: the host (and port) of the endpoint."""
        return namespace_of(self.eventhub)


def namespace_of(connection: EventHubConnection) -> str:
    """`<ns>.servicebus.windows.net` (identity), or the `Endpoint=sb://host[:port]` host."""
    if connection.fully_qualified_namespace:
        return connection.fully_qualified_namespace
    assert connection.connection_string is not None  # eventhub_connection() guarantees one
    for part in connection.connection_string.get_secret_value().split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "endpoint":
            host = urlsplit(value.strip()).netloc
            if host:
                return host
    raise ConfigError(
        "EventHubConnection has no Endpoint=sb://<namespace>/ part: set it to the namespace's "
        "connection string, or set EventHubConnection__fullyQualifiedNamespace"
    )


def hub_settings(env: Mapping[str, str]) -> HubSettings:
    """EventHubConnection, EVENTHUB_NAME, EVENTHUB_CONSUMER_GROUP and AzureWebJobsStorage."""
    try:
        return HubSettings(
            eventhub=eventhub_connection(env, "EventHubConnection"),
            eventhub_name=_value(env, "EVENTHUB_NAME", DEFAULT_EVENTHUB_NAME),
            consumer_group=_value(env, "EVENTHUB_CONSUMER_GROUP", DEFAULT_CONSUMER_GROUP),
            host_storage=storage_connection(env, HOST_STORAGE),
        )
    except SettingsError as e:
        raise ConfigError(str(e)) from e


def transform_settings(env: Mapping[str, str]) -> TransformSettings:
    """The consumer's settings (state table, containers, timing)."""
    try:
        return TransformSettings.from_env(env)
    except SettingsError as e:
        raise ConfigError(str(e)) from e


def ingest_settings(env: Mapping[str, str]) -> IngestSettings:
    """The webhook's settings (for replaying dead letters through the ingest code)."""
    try:
        return IngestSettings.from_env(env)
    except SettingsError as e:
        raise ConfigError(str(e)) from e
