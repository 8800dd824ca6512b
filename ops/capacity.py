"""The capacity model: what a contact centre of N seats needs past one machine, and its cost.

Pure arithmetic (no I/O, clock or environment; import-linter holds it to that) over three
tables kept here, each value with its source: `Measured` (the benches' figures, BENCHMARKS.md),
`Limits` (Azure's published limits and this app's settings) and `Prices` (Azure list prices).
`Assumptions` are the caller's (seats, traffic shape, Azure latencies), all overridable from
`python -m ops capacity`. docs/capacity.md explains every step; its tables are rendered here
(`doc_blocks`) and a test holds the document to them.

The one-instance model (issue 17, item 6; `bench.p5_partition`): an instance spends, per
micro-event, its CPU time plus, for each kind of storage request, requests per micro-event ×
the wait for one (the network and the service; the SDK's CPU is in the CPU time). Fed the
bench's own waits on Azurite it gives the bench's `model_micro_events_per_s`; fed Azure's it
gives the figure to plan with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

REQUEST_KINDS: Final = (
    "table_transaction",
    "table_write",
    "table_read",
    "table_query",
    "blob_write",
    "blob_read",
)
"""The kinds `adapters.request_timing` tells apart (a `table_write` is a single-entity write)."""
HOURS_PER_MONTH: Final = 730.0
"""Azure prices a month as 730 hours."""
SECONDS_PER_MONTH: Final = HOURS_PER_MONTH * 3600

P5: Final = "BENCHMARKS.md P5 (`bench.p5_partition`, Azurite, 2026-12-07)"
P5_DATA: Final = "P5 data set: simulator `realistic`, 8,000 conversations at 600 arrivals/min"
P5_CONSUMER: Final = "P5, consumer, host batches of {batch}"
P5_TIMER: Final = "P5, timer on its own instance, host batches of {batch}"


def _figure(value: float, unit: str, source: str) -> Any:
    """A dataclass field that carries its unit and source (rendered in docs/capacity.md)."""
    return field(default=value, metadata={"unit": unit, "source": source})


class CapacityError(ValueError):
    """An input the model cannot use (negative, zero where it divides, unknown name)."""


# ---------------------------------------------------------------------- what was measured
@dataclass(frozen=True, slots=True)
class RoleCost:
    """What one function costs per micro-event on its own instance, as measured."""

    cpu_ms: float
    """Process CPU per micro-event (the transform, the adapters, the storage SDK)."""
    requests: Mapping[str, float]
    """Storage requests per micro-event, by kind (`REQUEST_KINDS`)."""
    entities: float
    """Table entities written per micro-event (inside transactions)."""
    bench_wait_ms: Mapping[str, float]
    """Mean wait of one request of each kind on the bench (Azurite, same machine)."""
    bench_micro_events_per_s: float
    """Micro-events per second of this function's own wall time on the bench."""
    bench_model_micro_events_per_s: float
    """The bench's `model_micro_events_per_s`: 1 / (CPU + waits) per micro-event, every
    request counted (the timer's index queries too)."""

    @classmethod
    def from_bench(cls, role: Mapping[str, Any], micro_events: int) -> RoleCost:
        """A role's figures as `bench.p5_partition` prints them (every request kind)."""
        if micro_events < 1:
            raise CapacityError(f"the bench run processed {micro_events} micro-events")
        timed: Mapping[str, Mapping[str, float]] = role["requests"]
        unknown = set(timed) - set(REQUEST_KINDS) - {"table_setup", "blob_setup"}
        if unknown:
            raise CapacityError(f"the bench timed unknown request kinds {sorted(unknown)}")
        kinds = [k for k in REQUEST_KINDS if k in timed]
        return cls(
            cpu_ms=1000 * float(role["cpu_s"]) / micro_events,
            requests={k: timed[k]["count"] / micro_events for k in kinds},
            entities=float(role["table_entities_per_micro_event"]),
            bench_wait_ms={k: float(timed[k]["mean_wait_ms"]) for k in kinds},
            bench_micro_events_per_s=float(role["micro_events_per_s"]),
            bench_model_micro_events_per_s=float(role["model_micro_events_per_s"]),
        )

    def seconds_per_micro_event(self, wait_ms: Mapping[str, float], cpu_factor: float) -> float:
        """CPU (scaled) plus every request's wait, per micro-event."""
        waits = sum(n * wait_ms[kind] for kind, n in self.requests.items())
        return (self.cpu_ms * cpu_factor + waits) / 1000


# P5, batch 100 and 500 (out/bench/p5_partition.json of the run recorded in BENCHMARKS.md):
# requests are counts / 12,620 micro-events of partition 0 of 8.
_CONSUMER = {
    100: RoleCost(
        cpu_ms=0.1816,
        requests={
            "table_transaction": 405 / 12620,
            "table_read": 308 / 12620,
            "blob_write": 175 / 12620,
            "blob_read": 146 / 12620,
        },
        entities=1.7522,
        bench_wait_ms={
            "table_transaction": 10.26,
            "table_read": 0.612,
            "blob_write": 1.991,
            "blob_read": 0.79,
        },
        bench_micro_events_per_s=1769.4,
        bench_model_micro_events_per_s=1777.7,
    ),
    500: RoleCost(
        cpu_ms=0.2019,
        requests={
            "table_transaction": 311 / 12620,
            "table_read": 375 / 12620,
            "blob_write": 257 / 12620,
            "blob_read": 177 / 12620,
        },
        entities=2.0048,
        bench_wait_ms={
            "table_transaction": 14.437,
            "table_read": 0.608,
            "blob_write": 2.109,
            "blob_read": 1.39,
        },
        bench_micro_events_per_s=1560.7,
        bench_model_micro_events_per_s=1566.9,
    ),
}
# The timer's index queries are per run (one per shard), not per micro-event: kept apart.
_TIMER = {
    100: RoleCost(
        cpu_ms=0.2902,
        requests={
            "table_transaction": 98 / 12620,
            "table_read": 984 / 12620,
            "blob_write": 984 / 12620,
        },
        entities=0.4678,
        bench_wait_ms={
            "table_transaction": 13.552,
            "table_read": 0.604,
            "blob_write": 1.57,
            "table_query": 0.673,
        },
        bench_micro_events_per_s=1683.8,
        bench_model_micro_events_per_s=1687.8,
    ),
    500: RoleCost(
        cpu_ms=0.2924,
        requests={
            "table_transaction": 72 / 12620,
            "table_read": 934 / 12620,
            "blob_write": 934 / 12620,
        },
        entities=0.4441,
        bench_wait_ms={
            "table_transaction": 18.432,
            "table_read": 0.566,
            "blob_write": 1.952,
            "table_query": 0.595,
        },
        bench_micro_events_per_s=1639.1,
        bench_model_micro_events_per_s=1644.2,
    ),
}
MEASURED_BATCHES: Final = tuple(sorted(_CONSUMER))


@dataclass(frozen=True, slots=True)
class Measured:
    """The benches' figures the model starts from (override any with `dataclasses.replace`)."""

    micro_events_per_conversation: float = _figure(12.788, "micro-events", P5_DATA)
    """Micro-events delivered per conversation, duplicates included (what the consumer reads)."""
    deliveries_per_conversation: float = _figure(5.886, "webhook requests", P5_DATA)
    events_per_delivery: float = _figure(
        1.2477, "Event Hubs events", P5_DATA + ", split by `ingest.accept.plan`"
    )
    """Ingest sends one event per conversation per request; an array may hold several."""
    event_bytes: float = _figure(871, "bytes", P5_DATA + ": body and application properties")
    record_bytes: float = _figure(2248, "bytes", P5 + ": mean record blob")
    state_bytes: float = _figure(2659, "bytes", P5 + ": mean state row")
    timer_queries_per_run: float = _figure(4.0, "queries", P5 + ": one per shard (516 / 129 runs)")
    p2_operations_per_micro_event: float = _figure(
        0.195,
        "requests",
        "BENCHMARKS.md P2, 1,000 conversations (one host: the timer shares the consumer's cache)",
    )
    ingest_requests_per_s_per_instance: float = _figure(
        461.5, "requests/s", "BENCHMARKS.md P3: 923 requests/s on two ingest-only instances"
    )

    def consumer(self, batch: int) -> RoleCost:
        """The consumer's costs at a measured host batch size."""
        return _measured(_CONSUMER, batch)

    def timer(self, batch: int) -> RoleCost:
        """The timer's costs (own instance) with the consumer at a measured batch size."""
        return _measured(_TIMER, batch)


def _measured(table: Mapping[int, RoleCost], batch: int) -> RoleCost:
    if batch not in table:
        raise CapacityError(f"batch must be one of {sorted(table)} (measured), got {batch}")
    return table[batch]


# ---------------------------------------------------------------------- Azure and this app
LEARN: Final = "https://learn.microsoft.com/azure/"


@dataclass(frozen=True, slots=True)
class Limits:
    """Published Azure limits and this app's settings that bound the plan."""

    tu_events_per_s: float = _figure(
        1000, "events/s in", LEARN + "event-hubs/event-hubs-quotas (Standard, per TU)"
    )
    tu_mb_per_s: float = _figure(1.0, "MB/s in", LEARN + "event-hubs/event-hubs-quotas")
    max_tus: int = _figure(40, "TUs", LEARN + "event-hubs/event-hubs-quotas (Standard namespace)")
    max_partitions: int = _figure(32, "partitions", LEARN + "event-hubs/event-hubs-quotas")
    template_partitions: int = _figure(8, "partitions", "infra/main.bicep `partitionCount`")
    account_requests_per_s: float = _figure(
        20_000, "requests/s", LEARN + "storage/common/scalability-targets-standard-account"
    )
    table_partition_entities_per_s: float = _figure(
        2000, "entities/s", LEARN + "storage/tables/scalability-targets (one PartitionKey)"
    )
    max_instances: int = _figure(
        40, "instances", "infra/main.bicep `maximumInstanceCount` (Flex allows up to 1,000)"
    )
    state_shards: int = _figure(4, "shards", "adapters/entity.py STATE_SHARDS (new tables)")
    timer_period_s: float = _figure(30, "s", "functions/transform.py DEFAULT_TIMER_SCHEDULE")
    probe_period_s: float = _figure(60, "s", "functions/telemetry.py probe, every minute")
    state_retention_days: float = _figure(
        7, "days", "transform/state.py DEFAULT_RETENTION_DAYS (`STATE_RETENTION_DAYS`)"
    )
    max_event_batch: int = _figure(256, "events", "host.json maxEventBatchSize")
    min_event_batch: int = _figure(32, "events", "host.json minEventBatchSize")
    max_wait_s: float = _figure(2, "s", "host.json maxWaitTime")
    ownership_renewal_s: float = _figure(
        10,
        "s",
        "the Event Hubs processor's load-balancing cycle: an ownership write per owned partition",
    )


PRICING: Final = "https://azure.microsoft.com/pricing/details/"


@dataclass(frozen=True, slots=True)
class Prices:
    """Pay-as-you-go list prices, USD, East US, as read on 2026-12-07 (see docs/capacity.md)."""

    tu_hour: float = _figure(0.03, "USD per TU-hour", PRICING + "event-hubs/ (Standard)")
    ingress_per_million: float = _figure(
        0.028, "USD per million events", PRICING + "event-hubs/ (Standard ingress, 64 KB units)"
    )
    gb_second: float = _figure(
        0.000026, "USD per GB-s", PRICING + "functions/ (Flex Consumption, on demand)"
    )
    executions_per_million: float = _figure(
        0.40, "USD per million", PRICING + "functions/ (Flex Consumption, on demand)"
    )
    free_gb_seconds: float = _figure(100_000, "GB-s a month", PRICING + "functions/ (free grant)")
    free_executions: float = _figure(250_000, "a month", PRICING + "functions/ (free grant)")
    table_per_10k: float = _figure(
        0.00036, "USD per 10,000", PRICING + "storage/tables/ (transactions)"
    )
    table_gb_month: float = _figure(0.045, "USD per GB-month", PRICING + "storage/tables/ (LRS)")
    blob_write_per_10k: float = _figure(
        0.065, "USD per 10,000", PRICING + "storage/blobs/ (Hot, write operations)"
    )
    blob_read_per_10k: float = _figure(
        0.005, "USD per 10,000", PRICING + "storage/blobs/ (Hot, read operations)"
    )
    blob_gb_month: float = _figure(0.018, "USD per GB-month", PRICING + "storage/blobs/ (Hot LRS)")


# ---------------------------------------------------------------------- what the caller assumes
DEFAULT_AZURE_WAIT_MS: Final[Mapping[str, float]] = {
    "table_transaction": 15.0,
    "table_write": 10.0,
    "table_read": 6.0,
    "table_query": 10.0,
    "blob_write": 12.0,
    "blob_read": 6.0,
}
"""Assumed in-region waits per request on Azure (not measured here: read the storage account's
SuccessE2ELatency metric and override)."""


@dataclass(frozen=True, slots=True)
class Assumptions:
    """The contact centre and the deployment; every field is a `python -m ops capacity` option."""

    seats: int
    conversations_per_seat_hour: float = 8.0
    """Conversations one seat handles in the busiest hour."""
    peak_factor: float = 1.3
    """The busiest minutes against the busiest hour's mean (capacity is sized for them)."""
    peak_hours_per_month: float = 250.0
    """The month's traffic in busiest-hour equivalents (e.g. 22 days × ~11.4 h): for costs."""
    micro_events_per_conversation: float | None = None
    """None: the simulator's `realistic` profile (`Measured`)."""
    utilisation: float = 0.7
    """The share of any limit or instance the plan may use at the peak."""
    batch: int = 100
    """Host batch size whose measured costs apply (100 or 500)."""
    wait_ms: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_AZURE_WAIT_MS))
    cpu_factor: float = 1.0
    """CPU seconds on a Flex instance per CPU second on the bench machine."""
    instance_memory_gb: float = 2.0
    """Flex instance memory (infra `instanceMemoryMB` 2048: one core)."""
    quiet_tick_s: float = 0.3
    """Duration of a timer or probe run with nothing to do (docs/deploy.md's figure)."""
    months_of_records: float = 12.0
    """Records kept (priced at this many months of accumulation)."""
    operations_per_micro_event: float | None = None
    """Storage requests per micro-event; None: from the P5 roles (e.g. 0.195: P2's one host)."""

    def __post_init__(self) -> None:
        if self.seats < 1:
            raise CapacityError(f"seats must be at least 1, got {self.seats}")
        positive = {
            "conversations_per_seat_hour": self.conversations_per_seat_hour,
            "peak_factor": self.peak_factor,
            "peak_hours_per_month": self.peak_hours_per_month,
            "cpu_factor": self.cpu_factor,
            "instance_memory_gb": self.instance_memory_gb,
        }
        for name, value in positive.items():
            if not value > 0:
                raise CapacityError(f"{name} must be positive, got {value}")
        if not 0 < self.utilisation <= 1:
            raise CapacityError(f"utilisation must be in (0, 1], got {self.utilisation}")
        if (
            self.micro_events_per_conversation is not None
            and self.micro_events_per_conversation <= 0
        ):
            raise CapacityError("micro_events_per_conversation must be positive")
        if self.operations_per_micro_event is not None and self.operations_per_micro_event < 0:
            raise CapacityError("operations_per_micro_event must not be negative")
        for name, value in {
            "quiet_tick_s": self.quiet_tick_s,
            "months_of_records": self.months_of_records,
        }.items():
            if value < 0:
                raise CapacityError(f"{name} must not be negative, got {value}")
        unknown = set(self.wait_ms) - set(REQUEST_KINDS)
        if unknown:
            raise CapacityError(f"unknown request kinds {sorted(unknown)}; known: {REQUEST_KINDS}")
        missing = set(REQUEST_KINDS) - set(self.wait_ms)
        if missing:
            raise CapacityError(f"a wait is needed for {sorted(missing)}")
        if any(v < 0 for v in self.wait_ms.values()):
            raise CapacityError("waits must not be negative")


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the model derives for one contact centre."""

    seats: int
    # load at the peak
    conversations_per_s: float
    micro_events_per_s: float
    requests_per_s: float
    events_per_s: float
    ingress_mb_per_s: float
    # one instance
    partition_micro_events_per_s: float
    timer_micro_events_per_s: float
    # Event Hubs
    throughput_units: int
    partitions_for_throughput: int
    partitions: int
    # Flex Consumption instances
    consumer_instances: int
    timer_utilisation: float
    ingest_instances: int
    # storage
    shards_needed: int
    shard_entities_per_s: float
    operations_per_micro_event: float
    state_requests_per_s: float
    host_requests_per_s: float
    # where the plan stops
    over_limits: tuple[str, ...]
    # a month
    month_conversations: float
    month_micro_events: float
    cost: Mapping[str, float]

    @property
    def total_cost(self) -> float:
        """USD a month, every line."""
        return sum(self.cost.values())


def plan(
    a: Assumptions,
    m: Measured | None = None,
    limits: Limits | None = None,
    prices: Prices | None = None,
) -> Plan:
    """The plan for `a.seats` seats: load, hub, instances, storage, limits, monthly cost."""
    m, limits, prices = m or Measured(), limits or Limits(), prices or Prices()
    consumer, timer = m.consumer(a.batch), m.timer(a.batch)
    me_per_conversation = a.micro_events_per_conversation or m.micro_events_per_conversation
    # Load at the peak.
    conversations_per_s = a.seats * a.conversations_per_seat_hour * a.peak_factor / 3600
    micro_events_per_s = conversations_per_s * me_per_conversation
    requests_per_s = conversations_per_s * m.deliveries_per_conversation
    events_per_s = requests_per_s * m.events_per_delivery
    ingress_mb_per_s = events_per_s * m.event_bytes / 1e6
    # One instance: the consumer of one partition, and the app's one timer.
    consumer_s = consumer.seconds_per_micro_event(a.wait_ms, a.cpu_factor)
    timer_s = timer.seconds_per_micro_event(a.wait_ms, a.cpu_factor)
    partition_rate = 1 / consumer_s
    timer_rate = 1 / timer_s
    query_s = m.timer_queries_per_run * a.wait_ms["table_query"] / 1000
    timer_utilisation = (query_s + micro_events_per_s * limits.timer_period_s * timer_s) / (
        limits.timer_period_s
    )
    # Event Hubs: TUs for the ingress, partitions for the consumer; shards divide partitions.
    throughput_units = max(
        1,
        math.ceil(
            max(events_per_s / limits.tu_events_per_s, ingress_mb_per_s / limits.tu_mb_per_s)
            / a.utilisation
        ),
    )
    partitions_for_throughput = max(
        1, math.ceil(micro_events_per_s / (partition_rate * a.utilisation))
    )
    partitions = _round_up(max(partitions_for_throughput, throughput_units), limits.state_shards)
    # Storage: Table partitions (shards) by entities, accounts by requests.
    entities_per_s = micro_events_per_s * (consumer.entities + timer.entities)
    shards_needed = max(
        limits.state_shards,
        math.ceil(entities_per_s / (limits.table_partition_entities_per_s * a.utilisation)),
    )
    shards = _smallest_divisor_at_least(partitions, shards_needed)
    operations = (
        a.operations_per_micro_event
        if a.operations_per_micro_event is not None
        else sum(consumer.requests.values()) + sum(timer.requests.values())
    )
    queries_per_s = m.timer_queries_per_run / limits.timer_period_s
    state_requests_per_s = micro_events_per_s * operations + queries_per_s
    batch_events = _mean_batch(events_per_s / partitions, limits)
    checkpoints_per_s = events_per_s / batch_events
    host_requests_per_s = checkpoints_per_s + partitions / limits.ownership_renewal_s
    ingest_instances = max(
        1, math.ceil(requests_per_s / (m.ingest_requests_per_s_per_instance * a.utilisation))
    )
    consumer_instances = partitions_for_throughput
    over = _over_limits(
        limits,
        a,
        throughput_units=throughput_units,
        partitions=partitions,
        timer_utilisation=timer_utilisation,
        shards=shards,
        shards_needed=shards_needed,
        state_requests_per_s=state_requests_per_s,
        host_requests_per_s=host_requests_per_s,
        instances=consumer_instances + 1 + ingest_instances,
    )
    month_conversations = a.seats * a.conversations_per_seat_hour * a.peak_hours_per_month
    month_micro_events = month_conversations * me_per_conversation
    cost = monthly_cost(
        a,
        m,
        limits,
        prices,
        month_conversations=month_conversations,
        me_per_conversation=me_per_conversation,
        throughput_units=throughput_units,
        partitions=partitions,
        consumer_s=consumer_s,
        timer_s=timer_s,
        operations=operations,
    )
    return Plan(
        seats=a.seats,
        conversations_per_s=conversations_per_s,
        micro_events_per_s=micro_events_per_s,
        requests_per_s=requests_per_s,
        events_per_s=events_per_s,
        ingress_mb_per_s=ingress_mb_per_s,
        partition_micro_events_per_s=partition_rate,
        timer_micro_events_per_s=timer_rate,
        throughput_units=throughput_units,
        partitions_for_throughput=partitions_for_throughput,
        partitions=partitions,
        consumer_instances=consumer_instances,
        timer_utilisation=timer_utilisation,
        ingest_instances=ingest_instances,
        shards_needed=shards,
        shard_entities_per_s=entities_per_s / shards,
        operations_per_micro_event=operations,
        state_requests_per_s=state_requests_per_s,
        host_requests_per_s=host_requests_per_s,
        over_limits=over,
        month_conversations=month_conversations,
        month_micro_events=month_micro_events,
        cost=cost,
    )


def _round_up(n: int, multiple: int) -> int:
    return max(multiple, math.ceil(n / multiple) * multiple)


def _smallest_divisor_at_least(n: int, at_least: int) -> int:
    """The smallest divisor of `n` that is ≥ `at_least`, or `at_least` when there is none
    (then `_over_limits` says the shards cannot line up with the partitions)."""
    for d in range(max(at_least, 1), n + 1):
        if n % d == 0:
            return d
    return at_least


def _mean_batch(events_per_s_per_partition: float, limits: Limits) -> float:
    """Events per trigger invocation, on the safe side: a batch leaves once
    `minEventBatchSize` events are in, or after `maxWaitTime` with what came (a backlog gives
    bigger batches, up to `maxEventBatchSize`, and fewer invocations)."""
    arriving = events_per_s_per_partition * limits.max_wait_s
    return max(1.0, min(arriving, float(limits.min_event_batch)))


def _over_limits(limits: Limits, a: Assumptions, **at_peak: float) -> tuple[str, ...]:
    """Every limit the peak goes past (at the planned utilisation), in words."""
    over: list[str] = []
    if at_peak["throughput_units"] > limits.max_tus:
        over.append(
            f"Event Hubs: {at_peak['throughput_units']:.0f} TUs > {limits.max_tus} on Standard"
        )
    if at_peak["partitions"] > limits.max_partitions:
        over.append(
            f"Event Hubs: {at_peak['partitions']:.0f} partitions > {limits.max_partitions}: "
            "Premium/Dedicated, or one hub per site"
        )
    if at_peak["timer_utilisation"] > a.utilisation:
        over.append(
            f"timer: {at_peak['timer_utilisation']:.0%} busy (one instance for the whole app): "
            "records come late"
        )
    if at_peak["shards"] > at_peak["partitions"] or at_peak["shards"] > limits.max_partitions:
        over.append(f"Table: {at_peak['shards_needed']:.0f} shards cannot divide the partitions")
    if at_peak["state_requests_per_s"] > limits.account_requests_per_s * a.utilisation:
        over.append(
            "state storage account: a second account (shard the records and state by partition)"
        )
    if at_peak["host_requests_per_s"] > limits.account_requests_per_s * a.utilisation:
        over.append("host storage account (checkpoints): past its request rate")
    if at_peak["instances"] > limits.max_instances:
        over.append(
            f"Flex: {at_peak['instances']:.0f} instances > maximumInstanceCount "
            f"{limits.max_instances}"
        )
    return tuple(over)


def monthly_cost(
    a: Assumptions,
    m: Measured,
    limits: Limits,
    prices: Prices,
    *,
    month_conversations: float,
    me_per_conversation: float,
    throughput_units: int,
    partitions: int,
    consumer_s: float,
    timer_s: float,
    operations: float,
) -> dict[str, float]:
    """USD a month by line: Event Hubs, Flex Consumption, storage transactions (the state
    account's, and the host account's checkpoints and ownership renewals) and capacity."""
    month_me = month_conversations * me_per_conversation
    month_requests = month_conversations * m.deliveries_per_conversation
    month_events = month_requests * m.events_per_delivery
    ticks = SECONDS_PER_MONTH / limits.timer_period_s
    probes = SECONDS_PER_MONTH / limits.probe_period_s
    # Flex on demand: memory × seconds an instance is executing, and executions.
    busy_s = (
        month_me * consumer_s
        + month_me * timer_s
        + (ticks + probes) * a.quiet_tick_s
        + month_requests / m.ingest_requests_per_s_per_instance
    )
    mean_rate = month_events / (a.peak_hours_per_month * 3600) / partitions
    batches = month_events / _mean_batch(mean_rate, limits)
    executions = month_requests + batches + ticks + probes
    gb_seconds = busy_s * a.instance_memory_gb
    # Storage: the state account's requests by kind, the host account's checkpoints.
    consumer, timer = m.consumer(a.batch), m.timer(a.batch)
    by_kind = {k: consumer.requests.get(k, 0.0) + timer.requests.get(k, 0.0) for k in REQUEST_KINDS}
    measured_total = sum(by_kind.values())
    scale = operations / measured_total if measured_total else 0.0  # an override keeps the mix
    table_ops = month_me * scale * (by_kind["table_transaction"] + by_kind["table_read"])
    table_ops += month_me * scale * (by_kind["table_write"] + by_kind["table_query"])
    table_ops += ticks * m.timer_queries_per_run
    blob_writes = month_me * scale * by_kind["blob_write"]
    blob_reads = month_me * scale * by_kind["blob_read"]
    host_writes = batches + SECONDS_PER_MONTH * partitions / limits.ownership_renewal_s
    # A state row lives this long after its last write.
    state_gb = month_conversations * limits.state_retention_days / 30 * m.state_bytes / 1e9
    records_gb = month_conversations * a.months_of_records * m.record_bytes / 1e9
    return {
        "event_hubs_throughput_units": throughput_units * HOURS_PER_MONTH * prices.tu_hour,
        "event_hubs_ingress": month_events / 1e6 * prices.ingress_per_million,
        "flex_memory": max(gb_seconds - prices.free_gb_seconds, 0.0) * prices.gb_second,
        "flex_executions": max(executions - prices.free_executions, 0.0)
        / 1e6
        * prices.executions_per_million,
        "state_table_transactions": table_ops / 1e4 * prices.table_per_10k,
        "state_blob_transactions": blob_writes / 1e4 * prices.blob_write_per_10k
        + blob_reads / 1e4 * prices.blob_read_per_10k,
        "host_blob_transactions": host_writes / 1e4 * prices.blob_write_per_10k,
        "storage_capacity": state_gb * prices.table_gb_month + records_gb * prices.blob_gb_month,
    }


# ---------------------------------------------------------------------- where it stops
def seats_at_limits(
    a: Assumptions, m: Measured | None = None, limits: Limits | None = None
) -> dict[str, int]:
    """The seat count at which each limit is reached (at the planned utilisation), all else as
    in `a`: everything is linear in the seats."""
    m, limits = m or Measured(), limits or Limits()
    one = plan(replace(a, seats=1), m, limits)
    me, events, mb = one.micro_events_per_s, one.events_per_s, one.ingress_mb_per_s
    consumer, timer = m.consumer(a.batch), m.timer(a.batch)
    timer_s = timer.seconds_per_micro_event(a.wait_ms, a.cpu_factor)
    query_share = m.timer_queries_per_run * a.wait_ms["table_query"] / 1000 / limits.timer_period_s
    entities = consumer.entities + timer.entities
    u = a.utilisation
    return {
        f"partitions ({limits.template_partitions}, the template's)": int(
            limits.template_partitions * one.partition_micro_events_per_s * u / me
        ),
        f"partitions ({limits.max_partitions} consumers)": int(
            limits.max_partitions * one.partition_micro_events_per_s * u / me
        ),
        f"throughput units ({limits.max_tus})": int(
            min(
                limits.max_tus * limits.tu_events_per_s * u / events,
                limits.max_tus * limits.tu_mb_per_s * u / mb,
            )
        ),
        "timer (one instance)": int(max(u - query_share, 0.0) / (me * timer_s)),
        f"Table shards ({limits.state_shards})": int(
            limits.state_shards * limits.table_partition_entities_per_s * u / (me * entities)
        ),
        f"Table shards ({limits.max_partitions})": int(
            limits.max_partitions * limits.table_partition_entities_per_s * u / (me * entities)
        ),
        f"state account ({limits.account_requests_per_s:,.0f} requests/s)": int(
            limits.account_requests_per_s * u / (me * one.operations_per_micro_event)
        ),
    }


# ---------------------------------------------------------------------- rendering
def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _plain(value: float) -> str:
    """A figure as written: thousands separated, no exponent, no trailing zeros."""
    return f"{value:,.6f}".rstrip("0").rstrip(".")


def plan_rows(p: Plan) -> list[tuple[str, str]]:
    """The plan as (what, value) rows, for the CLI and the document."""
    rows = [
        ("conversations/s at the peak", _fmt(p.conversations_per_s, 2)),
        ("micro-events/s at the peak", _fmt(p.micro_events_per_s, 1)),
        ("webhook requests/s", _fmt(p.requests_per_s, 1)),
        (
            "Event Hubs events/s (MB/s)",
            f"{_fmt(p.events_per_s, 1)} ({_fmt(p.ingress_mb_per_s, 3)})",
        ),
        ("one partition's consumer, micro-events/s", _fmt(p.partition_micro_events_per_s)),
        ("throughput units", str(p.throughput_units)),
        ("partitions (for the consumer)", f"{p.partitions} ({p.partitions_for_throughput})"),
        (
            "Flex instances: consumer + timer + ingest",
            f"{p.consumer_instances} + 1 + {p.ingest_instances}",
        ),
        ("timer busy", f"{p.timer_utilisation:.1%}"),
        (
            "Table shards needed; entities/s each",
            f"{p.shards_needed}; {_fmt(p.shard_entities_per_s)}",
        ),
        (
            "state account requests/s (per micro-event)",
            f"{_fmt(p.state_requests_per_s)} ({p.operations_per_micro_event:.3f})",
        ),
        ("host account requests/s (checkpoints)", _fmt(p.host_requests_per_s, 1)),
        ("conversations a month", _fmt(p.month_conversations)),
    ]
    rows += [
        (f"USD/month: {name.replace('_', ' ')}", _fmt(cost, 2)) for name, cost in p.cost.items()
    ]
    rows.append(("USD/month: total", _fmt(p.total_cost, 2)))
    rows.append(("past a limit", "; ".join(p.over_limits) or "none"))
    return rows


def markdown_table(plans: Sequence[Plan]) -> str:
    """One column per plan."""
    header = "| | " + " | ".join(f"{p.seats:,} seats" for p in plans) + " |"
    lines = [header, "|---" * (len(plans) + 1) + "|"]
    columns = [plan_rows(p) for p in plans]
    for index, (label, _) in enumerate(columns[0]):
        lines.append(f"| {label} | " + " | ".join(c[index][1] for c in columns) + " |")
    return "\n".join(lines)


def figures_table(*tables: object) -> str:
    """Every sourced figure of `Measured`, `Limits` and `Prices` instances, as a table."""
    lines = ["| figure | value | unit | source |", "|---|---|---|---|"]
    for table in tables:
        for f in fields(table):  # type: ignore[arg-type]
            if "source" in f.metadata:
                value = getattr(table, f.name)
                lines.append(
                    f"| `{f.name}` | {_plain(value)} | {f.metadata['unit']} | "
                    f"{f.metadata['source']} |"
                )
    return "\n".join(lines)


def roles_table(m: Measured | None = None) -> str:
    """The measured per-micro-event costs of both roles at both batch sizes."""
    m = m or Measured()
    roles = [
        (f"{name}, {batch}", role)
        for batch in MEASURED_BATCHES
        for name, role in (("consumer", m.consumer(batch)), ("timer", m.timer(batch)))
    ]
    kinds = [k for k in REQUEST_KINDS if any(role.requests.get(k) for _, role in roles)]
    lines = [
        "| role, host batch | CPU ms | "
        + " | ".join(kinds)
        + " | entities | bench micro-events/s |",
        "|---" * (len(kinds) + 4) + "|",
    ]
    for label, role in roles:
        cells = [f"{role.requests.get(k, 0.0):.4f}" for k in kinds]
        lines.append(
            f"| {label} | {role.cpu_ms:.4f} | "
            + " | ".join(cells)
            + f" | {role.entities:.4f} | {_fmt(role.bench_micro_events_per_s, 1)} |"
        )
    return "\n".join(lines)


DOC_SEATS: Final = (250, 1000, 5000, 20_000, 50_000)


def doc_blocks() -> dict[str, str]:
    """The generated parts of docs/capacity.md, by block name."""
    base = Assumptions(seats=1)
    limits_table = "\n".join(
        ["| limit | reached at seats |", "|---|---|"]
        + [f"| {name} | {seats:,} |" for name, seats in seats_at_limits(base).items()]
    )
    return {
        "plans": markdown_table([plan(replace(base, seats=n)) for n in DOC_SEATS]),
        "limits": limits_table,
        "roles": roles_table(),
        "figures": figures_table(Measured(), Limits(), Prices()),
    }


_BLOCK = re.compile(r"(<!-- capacity:(?P<name>[a-z]+) -->\n)(.*?)(<!-- /capacity -->)", re.S)


def fill_blocks(text: str, blocks: Mapping[str, str]) -> str:
    """`text` with every `<!-- capacity:NAME -->…<!-- /capacity -->` block replaced."""
    seen: set[str] = set()

    def replace_block(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            raise CapacityError(f"no generated block named {name!r}; known: {sorted(blocks)}")
        seen.add(name)
        return match.group(1) + blocks[name] + "\n" + match.group(4)

    out = _BLOCK.sub(replace_block, text)
    missing = set(blocks) - seen
    if missing:
        raise CapacityError(f"the document has no block for {sorted(missing)}")
    return out


def parse_waits(items: Iterable[str]) -> dict[str, float]:
    """`kind=ms` pairs over the defaults (`--wait-ms table_read=4`)."""
    waits = dict(DEFAULT_AZURE_WAIT_MS)
    for item in items:
        kind, sep, value = item.partition("=")
        if not sep or kind not in REQUEST_KINDS:
            raise CapacityError(f"expected KIND=MS with KIND one of {REQUEST_KINDS}, got {item!r}")
        try:
            waits[kind] = float(value)
        except ValueError as e:
            raise CapacityError(f"{item!r}: {value!r} is not a number of milliseconds") from e
    return waits
