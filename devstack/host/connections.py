"""Resolve binding `connection` names like the Functions runtime: string or identity-based.

A connection named `Foo` is the setting `Foo` (a connection string) or, failing that, the
settings section `Foo__…` (`__fullyQualifiedNamespace` for Event Hubs; `__blobServiceUri`,
`__serviceUri` or `__accountName` for storage; optional `__clientId` / `__credential`), then
the same under the `AzureWebJobs` prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devstack.errors import SettingError
from devstack.settings import expand_development_storage, parse_connection_string

logger = logging.getLogger(__name__)

SECTION_SEPARATOR = "__"
# Storage retries like the .NET SDK the host uses (0.8 s, then exponential, 3 retries). The
# Python storage default waits 15 s before the first retry, which turns every blip of Azurite
# (a restart, a dropped pooled connection) into a long stall of checkpoints and ownership.
STORAGE_RETRY: dict[str, Any] = {
    "retry_total": 3,
    "initial_backoff": 0.8,
    "increment_base": 2,
    "random_jitter_range": 0.2,
}


def _section(settings: Mapping[str, str], name: str) -> dict[str, str]:
    prefix = (name + SECTION_SEPARATOR).lower()
    return {
        key[len(prefix) :].lower(): value
        for key, value in settings.items()
        if key.lower().startswith(prefix) and value
    }


def _lookup(settings: Mapping[str, str], name: str) -> tuple[str, str | None, dict[str, str]]:
    """(setting name used, connection string or None, identity section)."""
    for candidate in (name, f"AzureWebJobs{name}"):
        value = settings.get(candidate)
        if value:
            return candidate, value, {}
        section = _section(settings, candidate)
        if section:
            return candidate, None, section
    return name, None, {}


def _credential(section: Mapping[str, str]) -> Any:
    """An async azure-identity credential for identity-based connections."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    client_id = section.get("clientid")
    if section.get("credential", "").lower() == "managedidentity":
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(managed_identity_client_id=client_id)


@dataclass(frozen=True)
class EventHubConnection:
    """How to reach an Event Hubs namespace."""

    setting: str
    connection_string: str | None = None
    fully_qualified_namespace: str | None = None
    identity: tuple[tuple[str, str], ...] = ()

    @property
    def entity_path(self) -> str | None:
        if self.connection_string is None:
            return None
        return parse_connection_string(self.connection_string).get("entitypath")

    def consumer_client(self, eventhub_name: str, consumer_group: str, **kwargs: Any) -> Any:
        """An azure.eventhub.aio.EventHubConsumerClient for this connection."""
        from azure.eventhub.aio import EventHubConsumerClient

        if self.connection_string is not None:
            if self.entity_path:
                return EventHubConsumerClient.from_connection_string(
                    self.connection_string, consumer_group=consumer_group, **kwargs
                )
            return EventHubConsumerClient.from_connection_string(
                self.connection_string,
                consumer_group=consumer_group,
                eventhub_name=eventhub_name,
                **kwargs,
            )
        assert self.fully_qualified_namespace is not None
        return EventHubConsumerClient(
            fully_qualified_namespace=self.fully_qualified_namespace,
            eventhub_name=eventhub_name,
            consumer_group=consumer_group,
            credential=_credential(dict(self.identity)),
            **kwargs,
        )


def resolve_eventhub_connection(settings: Mapping[str, str], name: str) -> EventHubConnection:
    """The Event Hubs connection named by a trigger's `connection`."""
    used, connection_string, section = _lookup(settings, name)
    if connection_string:
        return EventHubConnection(setting=used, connection_string=connection_string)
    namespace = section.get("fullyqualifiednamespace")
    if namespace:
        return EventHubConnection(
            setting=used,
            fully_qualified_namespace=namespace,
            identity=tuple(sorted(section.items())),
        )
    msg = (
        f"Event Hubs connection {name!r} is not configured: set {name} to a connection string "
        f"or {name}__fullyQualifiedNamespace in local.settings.json Values or the environment"
    )
    raise SettingError(msg)


@dataclass(frozen=True)
class StorageConnection:
    """How to reach a storage account's Blob service."""

    setting: str
    connection_string: str | None = None
    blob_service_uri: str | None = None
    identity: tuple[tuple[str, str], ...] = ()

    def blob_service_client(self) -> Any:
        """An azure.storage.blob.aio.BlobServiceClient for this connection."""
        from azure.storage.blob.aio import BlobServiceClient

        if self.connection_string is not None:
            return BlobServiceClient.from_connection_string(self.connection_string, **STORAGE_RETRY)
        assert self.blob_service_uri is not None
        return BlobServiceClient(
            self.blob_service_uri, credential=_credential(dict(self.identity)), **STORAGE_RETRY
        )

    def checkpoint_store(self, container: str) -> Any:
        """The SDK's BlobCheckpointStore on `container` of this account."""
        from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

        if self.connection_string is not None:
            return BlobCheckpointStore.from_connection_string(
                self.connection_string, container, **STORAGE_RETRY
            )
        assert self.blob_service_uri is not None
        return BlobCheckpointStore(
            self.blob_service_uri,
            container,
            credential=_credential(dict(self.identity)),
            **STORAGE_RETRY,
        )


def resolve_storage_connection(settings: Mapping[str, str], name: str) -> StorageConnection:
    """The storage connection named `name` (AzureWebJobsStorage for the host itself)."""
    used, connection_string, section = _lookup(settings, name)
    if connection_string:
        return StorageConnection(
            setting=used, connection_string=expand_development_storage(connection_string)
        )
    uri = section.get("blobserviceuri") or section.get("serviceuri")
    if not uri and section.get("accountname"):
        uri = f"https://{section['accountname']}.blob.core.windows.net"
    if uri:
        return StorageConnection(
            setting=used, blob_service_uri=uri, identity=tuple(sorted(section.items()))
        )
    msg = (
        f"storage connection {name!r} is not configured: set {name} to a connection string "
        f"or {name}__blobServiceUri in local.settings.json Values or the environment"
    )
    raise SettingError(msg)
