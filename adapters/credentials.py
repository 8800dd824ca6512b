"""Building Azure SDK clients from our typed connections: a connection string, or an identity.

Identity-based settings follow the Functions runtime (`<NAME>__fullyQualifiedNamespace`,
`<NAME>__blobServiceUri`, …) and authenticate with `DefaultAzureCredential` (managed identity in
Azure, the developer's login locally). `<NAME>__clientId` picks the user-assigned identity
(without it, `DefaultAzureCredential` falls back to `AZURE_CLIENT_ID`). A client built with a
credential owns it: `close` both.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.eventhub.aio import EventHubProducerClient
from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from functions.settings import EventHubConnection, SettingsError, StorageConnection


def async_credential(client_id: str | None = None) -> AsyncTokenCredential:
    """A fresh async `DefaultAzureCredential` (async credentials are bound to one event loop)."""
    from azure.identity.aio import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


def sync_credential(client_id: str | None = None) -> TokenCredential:
    """A fresh sync `DefaultAzureCredential`, as `client_id`'s managed identity if given."""
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


def eventhub_producer(
    connection: EventHubConnection, eventhub_name: str, **kwargs: Any
) -> tuple[EventHubProducerClient, AsyncTokenCredential | None]:
    """An async producer for `eventhub_name`, and the credential it owns (if any)."""
    if connection.fully_qualified_namespace:
        credential = async_credential(connection.client_id)
        client = EventHubProducerClient(
            fully_qualified_namespace=connection.fully_qualified_namespace,
            eventhub_name=eventhub_name,
            credential=credential,
            **kwargs,
        )
        return client, credential
    assert connection.connection_string is not None  # guaranteed by eventhub_connection()
    client = EventHubProducerClient.from_connection_string(
        connection.connection_string.get_secret_value(), eventhub_name=eventhub_name, **kwargs
    )
    return client, None


def async_blob_service(
    connection: StorageConnection, **kwargs: Any
) -> tuple[AsyncBlobServiceClient, AsyncTokenCredential | None]:
    """An async Blob service client, and the credential it owns (if any)."""
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return AsyncBlobServiceClient.from_connection_string(secret, **kwargs), None
    uri = _blob_uri(connection)
    credential = async_credential(connection.client_id)
    return AsyncBlobServiceClient(uri, credential=credential, **kwargs), credential


def blob_service(
    connection: StorageConnection, **kwargs: Any
) -> tuple[BlobServiceClient, TokenCredential | None]:
    """A sync Blob service client, and the credential it owns (if any)."""
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return BlobServiceClient.from_connection_string(secret, **kwargs), None
    uri = _blob_uri(connection)
    credential = sync_credential(connection.client_id)
    return BlobServiceClient(uri, credential=credential, **kwargs), credential


def _blob_uri(connection: StorageConnection) -> str:
    if not connection.blob_service_uri:
        raise SettingsError(
            "the storage connection has no blob endpoint: set StateStorage__blobServiceUri "
            "(or StateStorage__serviceUri) to https://<account>.blob.core.windows.net"
        )
    return connection.blob_service_uri
