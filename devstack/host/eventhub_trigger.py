"""Event Hub triggers through the real SDK processor and blob checkpoint store.

Semantics follow the Functions Event Hubs extension:
- batches of up to `maxEventBatchSize` per partition, one invocation per batch (cardinality
  many) or one per event, in order (cardinality one); with `minEventBatchSize` > 1 events are
  held until that many are there or `maxWaitTime` has passed since the first one;
- a checkpoint after every invocation (every `batchCheckpointFrequency` batches) whether the
  function succeeded or raised, in container `azure-webjobs-eventhub` of AzureWebJobsStorage;
- while a retry policy is still retrying, the partition waits and nothing is checkpointed;
- instances share partitions through the checkpoint store's ownership blobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.eventhub import EventData, LoadBalancingStrategy
from azure.eventhub.aio import PartitionContext

from devstack.host.app_settings import resolve_setting_expression
from devstack.host.connections import (
    EventHubConnection,
    StorageConnection,
    resolve_eventhub_connection,
)
from devstack.host.host_config import EventHubsOptions
from devstack.host.indexing import FunctionDefinition
from devstack.host.invocation import FunctionInvoker, InvocationOutcome
from devstack.host.trigger_data import (
    PartitionInfo,
    TriggerInput,
    WorkerCapabilities,
    batch_input,
    single_input,
)

logger = logging.getLogger(__name__)

CHECKPOINT_CONTAINER = "azure-webjobs-eventhub"
DEFAULT_CONSUMER_GROUP = "$Default"
RESTART_DELAY_S = 2.0
CLOSE_TIMEOUT_S = 15.0
RUNNER_GRACE_S = 0.2
# How often the SDK calls back with an empty batch while events are held for a fuller one.
HOLD_POLL_S = 0.2


@dataclass(frozen=True)
class EventHubTriggerConfig:
    """A function's eventHubTrigger binding with settings resolved."""

    function_name: str
    eventhub_name: str
    consumer_group: str
    many: bool
    data_type: str  # binary | string | undefined
    connection: EventHubConnection


def eventhub_trigger_config(
    definition: FunctionDefinition, settings: Mapping[str, str]
) -> EventHubTriggerConfig:
    """Resolve `%SETTING%` names and the connection of an Event Hub trigger."""
    trigger = definition.trigger
    where = f"function {definition.name}"
    hub = resolve_setting_expression(str(trigger.get("eventHubName") or ""), settings, where=where)
    group = resolve_setting_expression(
        str(trigger.get("consumerGroup") or DEFAULT_CONSUMER_GROUP), settings, where=where
    )
    connection = resolve_eventhub_connection(settings, str(trigger.get("connection") or ""))
    hub = hub or connection.entity_path or ""
    return EventHubTriggerConfig(
        function_name=definition.name,
        eventhub_name=hub,
        consumer_group=group,
        many=str(trigger.get("cardinality", "one")).lower() == "many",
        data_type=str(trigger.get("dataType", "undefined")).lower(),
        connection=connection,
    )


@dataclass(frozen=True)
class LoadBalancing:
    """Processor load-balancing timings (short for local development)."""

    interval_s: float = 2.0
    ownership_expiration_s: float = 10.0


@dataclass
class TriggerStats:
    """Counters exposed in the host status."""

    batches: int = 0
    events: int = 0
    invocations: int = 0
    failures: int = 0
    retries: int = 0
    checkpoints: int = 0
    checkpoint_failures: int = 0
    owned_partitions: set[str] = field(default_factory=set)
    last_checkpoint: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "events": self.events,
            "invocations": self.invocations,
            "failures": self.failures,
            "retries": self.retries,
            "checkpoints": self.checkpoints,
            "checkpoint_failures": self.checkpoint_failures,
            "owned_partitions": sorted(self.owned_partitions, key=lambda p: (len(p), p)),
            "last_checkpoint_sequence": dict(sorted(self.last_checkpoint.items())),
        }


class EventHubTriggerListener:
    """Runs one Event Hub-triggered function on the partitions this instance owns."""

    def __init__(
        self,
        invoker: FunctionInvoker,
        config: EventHubTriggerConfig,
        options: EventHubsOptions,
        storage: StorageConnection,
        balancing: LoadBalancing,
    ) -> None:
        self._invoker = invoker
        self._config = config
        self._options = options
        self._storage = storage
        self._balancing = balancing
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Future[None]] = set()
        self._batches_since_checkpoint: dict[str, int] = {}
        self._held: dict[str, list[EventData]] = {}
        self._held_since: dict[str, float] = {}
        self._client: Any = None
        self._runner: asyncio.Task[None] | None = None
        self.stats = TriggerStats()

    @property
    def function_name(self) -> str:
        return self._config.function_name

    def status(self) -> dict[str, Any]:
        return {
            "function": self._config.function_name,
            "eventhub": self._config.eventhub_name,
            "consumer_group": self._config.consumer_group,
            **self.stats.as_dict(),
        }

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"eventhub:{self.function_name}")

    async def stop(self, grace_s: float) -> None:
        """Stop taking batches, let the in-flight ones finish, close the client."""
        self._stopping.set()
        if self._inflight:
            logger.info(
                "waiting for in-flight batches function=%s count=%s",
                self.function_name,
                len(self._inflight),
            )
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace_s)
            if pending:
                logger.warning(
                    "in-flight batches still running at shutdown function=%s count=%s",
                    self.function_name,
                    len(pending),
                )
        if self._client is not None:
            try:
                # Stops the partition consumers and releases their ownership blobs.
                await asyncio.wait_for(self._client.close(), timeout=CLOSE_TIMEOUT_S)
            except TimeoutError:
                logger.warning(
                    "event hub client did not close in time function=%s", self.function_name
                )
        if self._runner is not None:
            # After close() the SDK's receive call only sleeps out its load-balancing interval;
            # cancelling it then saves up to that interval on every shutdown.
            done, _ = await asyncio.wait({self._runner}, timeout=RUNNER_GRACE_S)
            if not done:
                self._runner.cancel()
                await asyncio.gather(self._runner, return_exceptions=True)

    async def _ensure_checkpoint_container(self) -> None:
        async with self._storage.blob_service_client() as service:
            with contextlib.suppress(ResourceExistsError):
                await service.create_container(CHECKPOINT_CONTAINER)

    async def _run(self) -> None:
        """Keep a processor running until stopped, rebuilding it if it fails."""
        while not self._stopping.is_set():
            try:
                await self._ensure_checkpoint_container()
                await self._receive()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logger.warning(
                    "event hub processor failed function=%s error=%r; restarting in %ss",
                    self.function_name,
                    e,
                    RESTART_DELAY_S,
                )
            if not self._stopping.is_set():
                await asyncio.sleep(RESTART_DELAY_S)

    async def _receive(self) -> None:
        config = self._config
        checkpoint_store = self._storage.checkpoint_store(CHECKPOINT_CONTAINER)
        client = config.connection.consumer_client(
            config.eventhub_name,
            config.consumer_group,
            checkpoint_store=checkpoint_store,
            load_balancing_interval=self._balancing.interval_s,
            partition_ownership_expiration_interval=self._balancing.ownership_expiration_s,
            load_balancing_strategy=LoadBalancingStrategy.GREEDY,
        )
        self._client = client
        logger.info(
            "event hub listener starting function=%s eventhub=%s consumer_group=%s many=%s "
            "max_batch=%s prefetch=%s",
            config.function_name,
            config.eventhub_name,
            config.consumer_group,
            config.many,
            self._options.max_event_batch_size,
            self._options.prefetch_count,
        )
        try:
            async with client:
                await client.receive_batch(
                    on_event_batch=self._on_event_batch,
                    max_batch_size=self._options.max_event_batch_size,
                    max_wait_time=HOLD_POLL_S if self._holds_events else None,
                    prefetch=self._options.prefetch_count,
                    starting_position=self._options.initial_offset.starting_position(),
                    on_error=self._on_error,
                    on_partition_initialize=self._on_partition_initialize,
                    on_partition_close=self._on_partition_close,
                )
        finally:
            await checkpoint_store.close()

    @property
    def _holds_events(self) -> bool:
        return self._config.many and self._options.min_event_batch_size > 1

    async def _on_partition_initialize(self, context: PartitionContext) -> None:
        self._held.pop(context.partition_id, None)
        self.stats.owned_partitions.add(context.partition_id)
        logger.info(
            "partition claimed function=%s partition=%s", self.function_name, context.partition_id
        )

    async def _on_partition_close(self, context: PartitionContext, reason: Any) -> None:
        # Held events were never checkpointed: the next owner gets them again.
        self._held.pop(context.partition_id, None)
        self.stats.owned_partitions.discard(context.partition_id)
        logger.info(
            "partition released function=%s partition=%s reason=%s",
            self.function_name,
            context.partition_id,
            reason,
        )

    async def _on_error(self, context: PartitionContext | None, error: Exception) -> None:
        partition = context.partition_id if context is not None else None
        logger.warning(
            "event hub error function=%s partition=%s error=%r",
            self.function_name,
            partition,
            error,
        )

    async def _on_event_batch(self, context: PartitionContext, events: list[EventData]) -> None:
        if self._stopping.is_set():
            # Not taken: redelivered from the last checkpoint to whoever owns the partition next.
            return
        if not self._holds_events:
            if events:
                await self._dispatch(context, events)
            return
        partition_id = context.partition_id
        held = self._held.setdefault(partition_id, [])
        if events and not held:
            self._held_since[partition_id] = time.monotonic()
        held.extend(events)
        options = self._options
        wait_s = options.max_wait_time.total_seconds()
        while held and not self._stopping.is_set():
            waited = time.monotonic() - self._held_since[partition_id]
            if len(held) < options.min_event_batch_size and waited < wait_s:
                return
            batch = held[: options.max_event_batch_size]
            del held[: options.max_event_batch_size]
            self._held_since[partition_id] = time.monotonic()
            await self._dispatch(context, batch)

    async def _dispatch(self, context: PartitionContext, events: list[EventData]) -> None:
        """Run one batch to completion even if the SDK cancels us (ownership lost, shutdown)."""
        unit = asyncio.ensure_future(self._process_batch(context, events))
        self._inflight.add(unit)
        unit.add_done_callback(self._inflight.discard)
        try:
            await asyncio.shield(unit)
        except asyncio.CancelledError:
            # The host never aborts a running invocation.
            if not unit.done():
                await asyncio.wait({unit})
            raise

    async def _process_batch(self, context: PartitionContext, events: list[EventData]) -> None:
        config = self._config
        partition = PartitionInfo(
            fully_qualified_namespace=context.fully_qualified_namespace,
            eventhub_name=context.eventhub_name,
            consumer_group=context.consumer_group,
            partition_id=context.partition_id,
        )
        self.stats.batches += 1
        self.stats.events += len(events)
        log_context = {
            "partition": context.partition_id,
            "first_sequence": events[0].sequence_number,
            "last_sequence": events[-1].sequence_number,
            "count": len(events),
        }
        processed: EventData | None = None
        argument = self._invoker.definition.trigger_argument
        if config.many:
            value = batch_input(
                events,
                partition,
                argument=argument,
                data_type=config.data_type,
                function_name=config.function_name,
                capabilities=WorkerCapabilities.announced(self._invoker.worker_capabilities),
            )
            if await self._invoke_with_retries(value, log_context) is not None:
                processed = events[-1]
        else:
            for event in events:
                single = single_input(
                    event,
                    partition,
                    argument=argument,
                    data_type=config.data_type,
                    function_name=config.function_name,
                )
                single_context = {**log_context, "sequence": event.sequence_number}
                if await self._invoke_with_retries(single, single_context) is None:
                    break
                processed = event
        if processed is not None:
            await self._checkpoint(context, processed)

    async def _invoke_with_retries(
        self, value: TriggerInput, log_context: Mapping[str, object]
    ) -> InvocationOutcome | None:
        """Invoke, retrying per the policy; None when shutdown interrupted the retries."""
        policy = self._invoker.definition.retry
        retries = 0
        previous: BaseException | None = None
        while True:
            outcome = await self._invoker.invoke(
                value.input_data,
                trigger_metadata=value.trigger_metadata,
                retry_count=retries,
                previous_error=previous,
                log_context=log_context,
            )
            self.stats.invocations += 1
            if outcome.succeeded:
                return outcome
            self.stats.failures += 1
            if policy is None or not policy.allows_retry(retries):
                return outcome
            retries += 1
            self.stats.retries += 1
            delay = policy.delay_before_retry(retries).total_seconds()
            logger.warning(
                "retrying function=%s retry=%s max_retry_count=%s delay_s=%.1f %s",
                self.function_name,
                retries,
                policy.max_retry_count,
                delay,
                " ".join(f"{k}={v}" for k, v in log_context.items()),
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                previous = outcome.error
                continue
            logger.warning(
                "shutdown during retries; batch left unchecked function=%s %s",
                self.function_name,
                " ".join(f"{k}={v}" for k, v in log_context.items()),
            )
            return None

    async def _checkpoint(self, context: PartitionContext, event: EventData) -> None:
        partition_id = context.partition_id
        count = self._batches_since_checkpoint.get(partition_id, 0) + 1
        if count < self._options.batch_checkpoint_frequency:
            self._batches_since_checkpoint[partition_id] = count
            return
        try:
            try:
                await context.update_checkpoint(event)
            except ResourceNotFoundError:
                # The container vanished (Azurite restarted without its data): recreate, retry.
                await self._ensure_checkpoint_container()
                await context.update_checkpoint(event)
        except Exception as e:
            self.stats.checkpoint_failures += 1
            self._batches_since_checkpoint[partition_id] = count
            logger.warning(
                "checkpoint failed function=%s partition=%s sequence=%s error=%r",
                self.function_name,
                partition_id,
                event.sequence_number,
                e,
            )
            return
        self._batches_since_checkpoint[partition_id] = 0
        self.stats.checkpoints += 1
        self.stats.last_checkpoint[partition_id] = int(event.sequence_number or 0)
        logger.debug(
            "checkpointed function=%s partition=%s sequence=%s",
            self.function_name,
            partition_id,
            event.sequence_number,
        )
