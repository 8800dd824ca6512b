"""The core services and the readers, wired to Azure from the typed settings.

Every shell builds what it needs here, so the function app, `ops` and the simulator reach the
same storage account and hub through the same adapters: the ingest service (the webhook, and
`ops deadletters replay --to hub`), the transform service (the consumer and its timer), and the
readers of what the pipeline stored (lag and checkpoints, conversation state, records, dead
letters). Nothing connects until first use.

Every SDK client made here goes, with its credential, to the object built over it, which closes
them (`close`, or `with`): a reader for one command or one look; the runtimes when their process
ends (the function app keeps its runtimes for the life of the worker and never closes them per
invocation).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from adapters.blob_deadletters import AsyncBlobDeadLetterSink, BlobDeadLetterSink
from adapters.blob_records import BlobRecordSink
from adapters.checkpoints import CONTAINER as CHECKPOINT_CONTAINER
from adapters.checkpoints import BlobCheckpointStore, HubAddress
from adapters.clients import CLIENT_OPTIONS, blob_service, table_service, tool_blobs
from adapters.containers import BlobContainerReader
from adapters.deadletter_store import DeadLetterPurge, DeadLetterStore
from adapters.entity import SPILL_CONTAINER
from adapters.eventhub_producer import EventHubPublisher
from adapters.opcount import METRICS, CountedDeadLetters, OperationCounter
from adapters.owned import owning
from adapters.partitions import EventHubReader
from adapters.record_reader import RecordReader
from adapters.request_timing import RequestTimer
from adapters.settings import (
    HubSettings,
    IngestSettings,
    OutputSettings,
    TransformSettings,
    Tuning,
)
from adapters.state_reader import ShardedStateReader
from adapters.table_state import TableStateStore
from ingest.accept import AcceptanceLimits
from ingest.breaker import CircuitBreaker
from ingest.metrics import REGISTRY, MetricsRegistry
from ingest.service import IngestConfig, IngestService
from transform.ports import Clock, DeadLetterSink, RecordSink, StateStore
from transform.service import TransformService

STORAGE_HINT = "check StateStorage, and that you may read blobs there"


class SystemClock:
    """Processing time from the machine's clock."""

    def now(self) -> datetime:
        """Aware UTC now."""
        return datetime.now(UTC)


# ---------------------------------------------------------------------- ingest
@dataclass(frozen=True, slots=True)
class IngestRuntime:
    """What one process keeps between requests."""

    settings: IngestSettings
    service: IngestService
    publisher: EventHubPublisher
    dead_letters: AsyncBlobDeadLetterSink

    async def close(self) -> None:
        """Close the producer and the dead-letter writer."""
        await self.publisher.close()
        await self.dead_letters.close()


def ingest_runtime(settings: IngestSettings, metrics: MetricsRegistry = REGISTRY) -> IngestRuntime:
    """The ingest service on the Event Hubs producer and the Blob dead-letter writer."""
    publisher = EventHubPublisher(settings.eventhub, settings.eventhub_name)
    dead_letters = AsyncBlobDeadLetterSink(settings.dead_letters, settings.deadletter_container)
    config = IngestConfig(
        limits=AcceptanceLimits(
            max_body_bytes=settings.max_body_bytes,
            max_payloads=settings.max_payloads,
            max_micro_events=settings.max_micro_events,
            max_event_bytes=settings.max_event_bytes,
        ),
        secret=settings.secret_bytes,
        send_timeout_seconds=settings.send_timeout_seconds,
        retry_after_seconds=settings.retry_after_seconds,
    )
    breaker = CircuitBreaker(
        settings.breaker_failure_threshold, settings.breaker_open_seconds, time.monotonic
    )
    service = IngestService(
        publisher=publisher,
        dead_letters=dead_letters,
        breaker=breaker,
        config=config,
        monotonic=time.monotonic,
        metrics=metrics,
    )
    return IngestRuntime(settings, service, publisher, dead_letters)


# ---------------------------------------------------------------------- transform
@dataclass(frozen=True, slots=True)
class TransformRuntime:
    """What one worker process keeps between invocations."""

    settings: TransformSettings
    tuning: Tuning
    service: TransformService
    store: StateStore
    records: RecordSink
    dead_letters: DeadLetterSink
    counter: OperationCounter
    clock: Clock = field(default_factory=SystemClock)
    deadletter_purge: DeadLetterPurge | None = None
    """The timer's dead-letter purge (`DEADLETTER_PURGE=timer`, the local stack), else None."""
    owned: ExitStack = field(default_factory=ExitStack)
    """The clients (and credentials) the runtime was built with: `close` closes them."""

    def prepare(self) -> None:
        """Create the table and the records container if need be (once per process)."""
        if isinstance(self.store, TableStateStore):
            self.store.ensure_table()
        if isinstance(self.records, BlobRecordSink):
            self.records.ensure_container()

    def close(self) -> None:
        """Close the clients the runtime was built with (a worker's runtime lives as long as
        the worker: this is for the tools, benchmarks and tests that build one and are done)."""
        self.owned.close()


def transform_runtime(
    settings: TransformSettings,
    tuning: Tuning,
    counter: OperationCounter = METRICS,
    clock: Clock | None = None,
    *,
    request_timer: RequestTimer | None = None,
) -> TransformRuntime:
    """The transform service on Table / Blob adapters (clients connect on first use);
    `clock` is processing time (None: the machine's); `request_timer` times every storage
    round trip (benchmarks; None: not timed)."""
    clock = clock or SystemClock()
    table_hooks = request_timer.hooks("table") if request_timer else {}
    blob_hooks = request_timer.hooks("blob") if request_timer else {}
    tables, table_credential = table_service(settings.state, **table_hooks)
    blobs, blob_credential = blob_service(settings.state, **CLIENT_OPTIONS, **blob_hooks)
    store = TableStateStore(
        tables.get_table_client(settings.state_table),
        blobs.get_container_client(SPILL_CONTAINER),
        counter=counter,
        cache_size=tuning.cache_size,
        shards=tuning.shards,
    )
    records = BlobRecordSink(
        blobs.get_container_client(settings.records_container),
        counter=counter,
        cache_size=tuning.cache_size,
    )
    sink = BlobDeadLetterSink(settings.state, settings.deadletter_container, **blob_hooks)
    dead_letters = CountedDeadLetters(sink, counter)
    service = TransformService(
        store,
        records,
        dead_letters,
        clock,
        settings.timing,
        sleep=time.sleep,
        pii=settings.pii.policy,
        media=settings.media,
    )
    retention = settings.deadletter_retention
    purged = deadletter_store(output_of(settings)) if retention.purge_by_timer else None
    purge = None if purged is None else DeadLetterPurge(purged, timedelta(days=retention.days))
    owned = owning(tables, table_credential, blobs, blob_credential, sink, purged)
    return TransformRuntime(
        settings, tuning, service, store, records, dead_letters, counter, clock, purge, owned
    )


# ---------------------------------------------------------------------- readers
def state_reader(settings: TransformSettings) -> ShardedStateReader:
    """The conversation state, read-only, uncached, counted apart from the consumer; closing
    the reader closes its clients."""
    tables, table_credential = table_service(settings.state)
    blobs, blob_credential = tool_blobs(settings.state)
    store = TableStateStore(
        tables.get_table_client(settings.state_table),
        blobs.get_container_client(SPILL_CONTAINER),
        counter=OperationCounter(),
        cache_size=0,
        presume_new=False,
        read_only=True,
    )
    owned = owning(tables, table_credential, blobs, blob_credential)
    return ShardedStateReader(store, settings.state_table, owned=owned)


def state_eraser(settings: TransformSettings) -> ShardedStateReader:
    """The conversation state, to find and erase conversations (`ops erase`): uncached, counted
    apart, never creating the table or the spill container."""
    return state_reader(settings)


def record_reader(output: OutputSettings) -> RecordReader:
    """The records container; closing the reader closes its client."""
    blobs, credential = tool_blobs(output.storage)
    container = blobs.get_container_client(output.records_container)
    return RecordReader(
        BlobContainerReader(container, hint=f"{STORAGE_HINT} (RECORDS_CONTAINER)"),
        owned=owning(blobs, credential),
    )


def deadletter_store(output: OutputSettings) -> DeadLetterStore:
    """The dead-letter container; closing the store closes its client."""
    blobs, credential = tool_blobs(output.storage)
    container = blobs.get_container_client(output.deadletter_container)
    return DeadLetterStore(
        BlobContainerReader(container, hint=f"{STORAGE_HINT} (DEADLETTER_CONTAINER)"),
        owned=owning(blobs, credential),
    )


def output_of(settings: TransformSettings) -> OutputSettings:
    """Where the consumer writes records and dead letters."""
    return OutputSettings(settings.state, settings.records_container, settings.deadletter_container)


def hub_address(settings: HubSettings) -> HubAddress:
    """The checkpoint address of the app's trigger."""
    return HubAddress(settings.namespace, settings.eventhub_name, settings.consumer_group)


def hub_reader(settings: HubSettings) -> EventHubReader:
    """The trigger's hub, as its consumer group sees it (a client per call, closed by it)."""
    return EventHubReader(settings.eventhub, settings.eventhub_name, settings.consumer_group)


def checkpoint_store(settings: HubSettings) -> BlobCheckpointStore:
    """The host's checkpoints in AzureWebJobsStorage; closing the store closes its client."""
    blobs, credential = tool_blobs(settings.host_storage)
    container = blobs.get_container_client(CHECKPOINT_CONTAINER)
    return BlobCheckpointStore(container, owned=owning(blobs, credential))
