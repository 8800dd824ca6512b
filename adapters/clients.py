"""Every Azure SDK client the project builds, from the typed connections of `adapters.settings`.

Identity-based settings follow the Functions runtime (`<NAME>__fullyQualifiedNamespace`,
`<NAME>__blobServiceUri`, …) and authenticate with `DefaultAzureCredential` (managed identity in
Azure, the developer's login locally). `<NAME>__clientId` picks the user-assigned identity
(without it, `DefaultAzureCredential` falls back to `AZURE_CLIENT_ID`).

Ownership, one rule: every builder here returns the client and the credential it made for it
(None with a connection string), and whoever calls the builder owns both and closes both. No SDK
client closes its credential, and a container or table client from `get_*_client` shares its
service client's transport through a wrapper whose `close` does nothing: closing means the
service client, then the credential. A reader built over clients its builder made is handed them
in an `ExitStack` (`adapters.owned.owning`) and closes them with itself (`close`, or `with`); a
reader given a client by its caller never closes that client.

The app's clients keep SDK retries short (`CLIENT_OPTIONS`: the Functions retry policy rides out
outages); the tools' clients too (`TOOL_EVENTHUB_RETRY`, `TOOL_STORAGE_RETRY`: an operator waits
at the terminal, and the probe runs every minute anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables import TableServiceClient
from azure.eventhub import EventHubConsumerClient
from azure.eventhub.aio import EventHubConsumerClient as AsyncEventHubConsumerClient
from azure.eventhub.aio import EventHubProducerClient
from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from adapters.settings import EventHubConnection, SettingsError, StorageConnection

if TYPE_CHECKING:  # imported when a credential is made: the package is slow to import
    from azure.identity import DefaultAzureCredential

# The Functions retry policy handles outages; the SDK only rides out blips.
CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.4,
    "connection_timeout": 5,
    "read_timeout": 30,
}
TOOL_EVENTHUB_RETRY: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.5}
TOOL_STORAGE_RETRY: dict[str, Any] = {
    "retry_total": 2,
    "connection_timeout": 10,
    "read_timeout": 30,
}


def async_credential(client_id: str | None = None) -> AsyncTokenCredential:
    """A fresh async `DefaultAzureCredential` (async credentials are bound to one event loop)."""
    from azure.identity.aio import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


def sync_credential(client_id: str | None = None) -> DefaultAzureCredential:
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
) -> tuple[BlobServiceClient, DefaultAzureCredential | None]:
    """A sync Blob service client, and the credential it owns (if any)."""
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return BlobServiceClient.from_connection_string(secret, **kwargs), None
    uri = _blob_uri(connection)
    credential = sync_credential(connection.client_id)
    return BlobServiceClient(uri, credential=credential, **kwargs), credential


def table_service(
    connection: StorageConnection, **kwargs: Any
) -> tuple[TableServiceClient, DefaultAzureCredential | None]:
    """A Table service client from a connection string, or the table URI and an identity; and
    the credential it owns (if any)."""
    options = {**CLIENT_OPTIONS, **kwargs}
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return TableServiceClient.from_connection_string(secret, **options), None
    if not connection.table_service_uri:
        raise SettingsError(
            "the storage connection has no table endpoint: set StateStorage__tableServiceUri "
            "to https://<account>.table.core.windows.net"
        )
    credential = sync_credential(connection.client_id)
    client = TableServiceClient(
        endpoint=connection.table_service_uri, credential=credential, **options
    )
    return client, credential


def tool_blobs(
    connection: StorageConnection,
) -> tuple[BlobServiceClient, DefaultAzureCredential | None]:
    """A sync Blob service client for the tools, and the credential it owns (if any)."""
    return blob_service(connection, **TOOL_STORAGE_RETRY)


def consumer(
    connection: EventHubConnection, hub: str, group: str
) -> tuple[EventHubConsumerClient, DefaultAzureCredential | None]:
    """A sync consumer client (partition properties; no receiving), and the credential it owns
    (if any)."""
    if connection.fully_qualified_namespace:
        credential = sync_credential(connection.client_id)
        client = EventHubConsumerClient(
            fully_qualified_namespace=connection.fully_qualified_namespace,
            eventhub_name=hub,
            consumer_group=group,
            credential=credential,
            **TOOL_EVENTHUB_RETRY,
        )
        return client, credential
    assert connection.connection_string is not None  # eventhub_connection() guarantees one
    client = EventHubConsumerClient.from_connection_string(
        connection.connection_string.get_secret_value(),
        consumer_group=group,
        eventhub_name=hub,
        **TOOL_EVENTHUB_RETRY,
    )
    return client, None


def async_consumer(
    connection: EventHubConnection, hub: str, group: str
) -> tuple[AsyncEventHubConsumerClient, AsyncTokenCredential | None]:
    """An async consumer client (reading single events at a position), and the credential it
    owns (if any)."""
    if connection.fully_qualified_namespace:
        credential = async_credential(connection.client_id)
        client = AsyncEventHubConsumerClient(
            fully_qualified_namespace=connection.fully_qualified_namespace,
            eventhub_name=hub,
            consumer_group=group,
            credential=credential,
            **TOOL_EVENTHUB_RETRY,
        )
        return client, credential
    assert connection.connection_string is not None
    client = AsyncEventHubConsumerClient.from_connection_string(
        connection.connection_string.get_secret_value(),
        consumer_group=group,
        eventhub_name=hub,
        **TOOL_EVENTHUB_RETRY,
    )
    return client, None


def _blob_uri(connection: StorageConnection) -> str:
    if not connection.blob_service_uri:
        raise SettingsError(
            "the storage connection has no blob endpoint: set StateStorage__blobServiceUri "
            "(or StateStorage__serviceUri) to https://<account>.blob.core.windows.net"
        )
    return connection.blob_service_uri
