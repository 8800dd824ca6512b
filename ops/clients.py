"""SDK clients for the ops tools, from the app's typed connections (secrets stay in them).

Storage clients come from `adapters.credentials`; Event Hubs consumers are built here because
the app itself only produces (the trigger's consumer belongs to the Functions host).
"""

from __future__ import annotations

from typing import Any

from azure.eventhub import EventHubConsumerClient
from azure.eventhub.aio import EventHubConsumerClient as AsyncEventHubConsumerClient
from azure.storage.blob import BlobServiceClient

from adapters.credentials import async_credential, blob_service, sync_credential
from functions.settings import EventHubConnection, StorageConnection

# Few, quick retries: an operator waits at the terminal, and the probe runs every minute anyway.
EVENTHUB_RETRY: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.5}
STORAGE_RETRY: dict[str, Any] = {"retry_total": 2, "connection_timeout": 10, "read_timeout": 30}


def consumer(connection: EventHubConnection, hub: str, group: str) -> EventHubConsumerClient:
    """A sync consumer client (partition properties; no receiving)."""
    if connection.fully_qualified_namespace:
        return EventHubConsumerClient(
            fully_qualified_namespace=connection.fully_qualified_namespace,
            eventhub_name=hub,
            consumer_group=group,
            credential=sync_credential(connection.client_id),
            **EVENTHUB_RETRY,
        )
    assert connection.connection_string is not None  # eventhub_connection() guarantees one
    return EventHubConsumerClient.from_connection_string(
        connection.connection_string.get_secret_value(),
        consumer_group=group,
        eventhub_name=hub,
        **EVENTHUB_RETRY,
    )


def async_consumer(
    connection: EventHubConnection, hub: str, group: str
) -> AsyncEventHubConsumerClient:
    """An async consumer client (reading single events at a position)."""
    if connection.fully_qualified_namespace:
        return AsyncEventHubConsumerClient(
            fully_qualified_namespace=connection.fully_qualified_namespace,
            eventhub_name=hub,
            consumer_group=group,
            credential=async_credential(connection.client_id),
            **EVENTHUB_RETRY,
        )
    assert connection.connection_string is not None
    return AsyncEventHubConsumerClient.from_connection_string(
        connection.connection_string.get_secret_value(),
        consumer_group=group,
        eventhub_name=hub,
        **EVENTHUB_RETRY,
    )


def blobs(connection: StorageConnection) -> BlobServiceClient:
    """A sync Blob service client (its credential, if any, is closed with it by the GC)."""
    client, _ = blob_service(connection, **STORAGE_RETRY)
    return client
