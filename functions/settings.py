"""App settings (SPEC 8), read once at the edge into typed objects; the core gets plain values.

Names are fixed so that templates, tools and docs agree. Every connection accepts either a
connection string (`<NAME>`) or the Functions runtime's identity-based form
(`<NAME>__fullyQualifiedNamespace` for Event Hubs; `<NAME>__serviceUri`,
`<NAME>__blobServiceUri`, `<NAME>__tableServiceUri` for storage), with an optional
`<NAME>__clientId` naming the user-assigned managed identity to authenticate as.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr


class SettingsError(ValueError):
    """A setting that is missing or malformed; the message names it and says what to do."""


@dataclass(frozen=True, slots=True)
class EventHubConnection:
    """How to reach the Event Hubs namespace: a connection string, or a namespace + identity."""

    connection_string: SecretStr | None
    fully_qualified_namespace: str | None
    client_id: str | None = None
    """`<NAME>__clientId`: the user-assigned managed identity to use (None: the default)."""

    def describe(self) -> str:
        """For logs: never the secret."""
        if self.fully_qualified_namespace:
            return f"identity namespace={self.fully_qualified_namespace}"
        return "connection-string"


@dataclass(frozen=True, slots=True)
class StorageConnection:
    """How to reach a storage account: a connection string, or service URIs + identity."""

    connection_string: SecretStr | None
    blob_service_uri: str | None
    table_service_uri: str | None
    client_id: str | None = None
    """`<NAME>__clientId`: the user-assigned managed identity to use (None: the default)."""

    def describe(self) -> str:
        """For logs: never the secret."""
        if self.blob_service_uri or self.table_service_uri:
            return f"identity blob={self.blob_service_uri} table={self.table_service_uri}"
        return "connection-string"


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def eventhub_connection(env: Mapping[str, str], name: str) -> EventHubConnection:
    """Read `<name>` or `<name>__fullyQualifiedNamespace`."""
    namespace = _get(env, f"{name}__fullyQualifiedNamespace")
    connection_string = _get(env, name)
    if not namespace and not connection_string:
        raise SettingsError(
            f"set {name} to an Event Hubs connection string, or "
            f"{name}__fullyQualifiedNamespace to <namespace>.servicebus.windows.net"
        )
    return EventHubConnection(
        connection_string=SecretStr(connection_string) if connection_string else None,
        fully_qualified_namespace=namespace,
        client_id=_get(env, f"{name}__clientId"),
    )


def storage_connection(env: Mapping[str, str], name: str) -> StorageConnection:
    """Read `<name>` or its identity-based `__serviceUri` / `__blobServiceUri` / … forms."""
    connection_string = _get(env, name)
    service_uri = _get(env, f"{name}__serviceUri")
    blob_uri = _get(env, f"{name}__blobServiceUri") or service_uri
    table_uri = _get(env, f"{name}__tableServiceUri")
    if table_uri is None and blob_uri is not None and ".blob." in blob_uri:
        table_uri = blob_uri.replace(".blob.", ".table.")
    if not connection_string and not (blob_uri or table_uri):
        raise SettingsError(
            f"set {name} to a storage connection string, or {name}__blobServiceUri and "
            f"{name}__tableServiceUri (or {name}__serviceUri) for an identity-based connection"
        )
    return StorageConnection(
        connection_string=SecretStr(connection_string) if connection_string else None,
        blob_service_uri=blob_uri,
        table_service_uri=table_uri,
        client_id=_get(env, f"{name}__clientId"),
    )


def number_setting(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    """A numeric setting: `default` when unset, else a number >= `minimum` or a clear error."""
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from e
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """The webhook's settings (SPEC 6)."""

    eventhub: EventHubConnection
    eventhub_name: str
    dead_letters: StorageConnection
    deadletter_container: str
    webhook_secret: SecretStr | None
    max_body_bytes: int
    send_timeout_seconds: float
    breaker_failure_threshold: int
    breaker_open_seconds: float
    max_payloads: int
    max_micro_events: int
    max_event_bytes: int
    retry_after_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        """Read from the environment (app settings / local.settings.json Values)."""
        env = os.environ if env is None else env
        secret = _get(env, "WEBHOOK_SECRET")
        return cls(
            eventhub=eventhub_connection(env, "EventHubConnection"),
            eventhub_name=_get(env, "EVENTHUB_NAME") or "genesys-events",
            dead_letters=storage_connection(env, "StateStorage"),
            deadletter_container=_get(env, "DEADLETTER_CONTAINER") or "deadletter",
            webhook_secret=SecretStr(secret) if secret else None,
            max_body_bytes=int(number_setting(env, "INGEST_MAX_BODY_BYTES", 1024 * 1024, 1)),
            send_timeout_seconds=number_setting(env, "INGEST_SEND_TIMEOUT_SECONDS", 10.0, 0.1),
            breaker_failure_threshold=int(number_setting(env, "BREAKER_FAILURE_THRESHOLD", 5, 1)),
            breaker_open_seconds=number_setting(env, "BREAKER_OPEN_SECONDS", 30.0, 0.1),
            max_payloads=int(number_setting(env, "INGEST_MAX_PAYLOADS", 1000, 1)),
            max_micro_events=int(number_setting(env, "INGEST_MAX_MICRO_EVENTS", 10_000, 1)),
            max_event_bytes=int(
                number_setting(env, "INGEST_MAX_EVENT_BYTES", 1024 * 1024 - 16 * 1024, 1024)
            ),
            retry_after_seconds=number_setting(env, "INGEST_RETRY_AFTER_SECONDS", 1.0, 0),
        )


@dataclass(frozen=True, slots=True)
class TransformSettings:
    """The consumer's and the timer's settings (SPEC 5, 8)."""

    state: StorageConnection
    state_table: str
    records_container: str
    deadletter_container: str
    grace_seconds: float
    idle_timeout_seconds: float
    retention_days: float
    partial_snapshots: bool
    partial_snapshots_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TransformSettings:
        """Read from the environment (app settings / local.settings.json Values)."""
        env = os.environ if env is None else env
        if _flag(env, "PARTIAL_SNAPSHOTS", False):
            raise SettingsError(
                "PARTIAL_SNAPSHOTS=true is not supported yet (SPEC 5 makes it optional, off by "
                "default): remove the setting or set it to false"
            )
        return cls(
            state=storage_connection(env, "StateStorage"),
            state_table=_get(env, "STATE_TABLE_NAME") or "conversationstate",
            records_container=_get(env, "RECORDS_CONTAINER") or "conversations",
            deadletter_container=_get(env, "DEADLETTER_CONTAINER") or "deadletter",
            grace_seconds=number_setting(env, "GRACE_PERIOD_SECONDS", 60.0),
            idle_timeout_seconds=number_setting(env, "IDLE_TIMEOUT_SECONDS", 4 * 3600.0),
            retention_days=number_setting(env, "STATE_RETENTION_DAYS", 7.0),
            partial_snapshots=_flag(env, "PARTIAL_SNAPSHOTS", False),
            partial_snapshots_prefix=_get(env, "PARTIAL_SNAPSHOTS_PREFIX") or "partial/",
        )
