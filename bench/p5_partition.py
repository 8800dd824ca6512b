"""P5: micro-events/s ONE transform instance sustains on ONE partition, against Azurite.

Issue 17, item 6: the consumer under real storage latency. The input is the simulator's
`realistic` profile at a contact-centre arrival rate, split into Event Hubs events exactly as
ingest splits a webhook body (`ingest.accept.plan`: one event per conversation per request,
partition key = its id) and filtered to one partition by the service's placement
(`adapters.partition_hash.partition_index`). The events of that partition are fed, in order,
with their positions, in host batches of 100 and 500 to the transform service the function
app builds (`adapters.wiring.transform_runtime`: the Table and Blob adapters over the Azure
SDK) on Azurite started on free ports; the timer runs as the app's does (`run_timer`, every
30 s of processing time), and at the end the clock jumps past every grace and idle period
and the timer drains what is owed, so every conversation's work is counted.

Processing time is simulated: before a batch it is the latest micro-event time seen so far,
so the data's own pace (grace periods, the timer's ticks, how many conversations share a
batch) is that of a contact centre of the given arrival rate while the consumer runs flat
out: the throughput is what one instance sustains when its partition always has a full batch.

Where the time goes: wall time against this process's CPU time; every storage round trip
timed by kind (`adapters.request_timing`), with the CPU this thread spent inside it (the SDK)
told apart from waiting (network and Azurite); Azurite's own CPU; the operations counted by
the adapters (`adapters.opcount`). `model_micro_events_per_s` is 1 / (CPU seconds + storage
waits per micro-event): what `ops.capacity` computes from these figures.

    nice -n 10 python -m bench.p5_partition [--conversations 8000] [--arrivals-per-minute 600]
        [--partitions 8] [--partition 0] [--batch-sizes 100,500]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psutil
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from adapters.memory import ManualClock
from adapters.opcount import OperationCounter, OperationCounts, operation_scope
from adapters.partition_hash import partition_index
from adapters.request_timing import RequestTime, RequestTimer
from adapters.settings import TransformSettings, Tuning
from adapters.wiring import TransformRuntime, transform_runtime
from bench.common import ROOT, generated_input, write_result
from bench.p1_transform import run_core
from devstack.stack import Stack, StackPorts
from ingest.accept import AcceptanceLimits, Request, plan
from schemas.timestamps import ms_to_datetime
from transform.normalize import parse_delivery
from transform.service import Counts, Delivery
from transform.state import SourcePosition

TIMER_EVERY_MS = 30_000
"""The app's default TIMER_SCHEDULE (`*/30 * * * * *`, functions/transform.py)."""
STORAGE_KINDS = ("table_transaction", "table_write", "table_read", "table_query",
                 "blob_write", "blob_read")  # fmt: skip


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One Event Hubs event of the partition, as the trigger hands it over."""

    body: bytes
    clock_ms: int
    """Processing time when it is consumed: the latest micro-event time seen so far."""
    micro_events: int


@dataclass(frozen=True, slots=True)
class Split:
    """The data set split as ingest splits it, and the chosen partition's events."""

    conversations: int
    deliveries: int
    events: int
    micro_events: int
    event_bytes: int
    """Bodies plus application properties of every event (what Event Hubs meters)."""
    partition: list[HubEvent]


def split_for_partition(folder: Path, partitions: int, partition: int) -> Split:
    """Every delivery split by ingest's planner; the events placed in `partition` kept."""
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    lines = (folder / "deliveries.jsonl").read_bytes().splitlines()
    events = micro_events = event_bytes = 0
    kept: list[HubEvent] = []
    clock_ms = 0
    for number, line in enumerate(lines, start=1):
        request = Request(body=line, headers={}, received_at_ms=0, message_id=f"line-{number}")
        the_plan = plan(request, AcceptanceLimits())
        micro_events += the_plan.micro_events
        for event in the_plan.events:
            events += 1
            event_bytes += len(event.body) + sum(
                len(k) + len(v) for k, v in event.properties.items()
            )
            if partition_index(event.partition_key, partitions) != partition:
                continue
            parsed = parse_delivery(event.body)
            times = [e.timestamp_ms for e in parsed.events]
            clock_ms = max([clock_ms, *times])
            kept.append(HubEvent(event.body, clock_ms, len(parsed.events)))
    return Split(
        int(manifest["counts"]["conversations"]), len(lines), events, micro_events,
        event_bytes, kept,
    )  # fmt: skip


def deliveries_of(events: list[HubEvent], partition: int, first_sequence: int) -> list[Delivery]:
    """Trigger input → deliveries with positions, as `functions.transform.to_deliveries` does."""
    out: list[Delivery] = []
    for offset, event in enumerate(events):
        sequence = first_sequence + offset
        position = SourcePosition(str(partition), sequence, event.clock_ms)
        source = {"partition": str(partition), "sequence_number": sequence,
                  "offset": str(sequence * 512)}  # fmt: skip
        out.append(Delivery(event.body, position, source))
    return out


class Azurite:
    """Azurite on free loopback ports, in a temporary folder, for one bench run."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="p5-azurite-"))
        self.stack = Stack(ROOT, ports=StackPorts.free(), state_dir=self._folder)

    def __enter__(self) -> Azurite:
        self.stack.logs_dir.mkdir(parents=True, exist_ok=True)
        self.stack.start_azurite()
        return self

    def __exit__(self, *_: object) -> None:
        self.stack.stop_azurite()
        shutil.rmtree(self._folder, ignore_errors=True)

    @property
    def connection_string(self) -> str:
        return self.stack.storage_connection_string

    def cpu_s(self) -> float:
        """CPU seconds Azurite has used so far (user + system, children included)."""
        process = self.stack.parts.running("azurite")
        if process is None:
            return 0.0
        total = 0.0
        for p in (process, *process.children(recursive=True)):
            try:
                times = p.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total


@dataclass(slots=True)
class Role:
    """One function's runtime (its own adapters and caches, as on its own instance) and what
    it did: invocations, wall and CPU seconds, storage requests counted and timed."""

    rt: TransformRuntime
    counter: OperationCounter
    timer: RequestTimer
    invocations: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @classmethod
    def build(cls, settings: TransformSettings, clock: ManualClock) -> Role:
        counter, timer = OperationCounter(), RequestTimer()
        rt = transform_runtime(settings, Tuning.from_env({}), counter, clock, request_timer=timer)
        try:
            rt.prepare()  # once per worker process: not part of the figures
        except BaseException:
            rt.close()
            raise
        return cls(rt, counter, timer)

    def close(self) -> None:
        """Close the runtime's clients (the run is over)."""
        self.rt.close()

    def timed(self, work: Callable[[], Counts]) -> Counts:
        wall, cpu = time.perf_counter(), time.process_time()
        with operation_scope():
            counts: Counts = work()
        self.invocations += 1
        self.wall_s += time.perf_counter() - wall
        self.cpu_s += time.process_time() - cpu
        return counts


def run_partition(
    azurite: Azurite, events: list[HubEvent], batch_size: int, partition: int
) -> dict[str, Any]:
    """Feed the partition's events in batches of `batch_size`; the figures.

    The trigger and the timer each get their own runtime, as Flex Consumption's per-function
    scaling runs them on separate instances (the timer is a singleton for the whole app):
    neither sees the other's cache.
    """
    suffix = uuid.uuid4().hex[:8]
    settings = TransformSettings.from_env({
        "StateStorage": azurite.connection_string,
        "STATE_TABLE_NAME": f"p5state{batch_size}{suffix}",
        "RECORDS_CONTAINER": f"p5-records-{batch_size}-{suffix}",
        "DEADLETTER_CONTAINER": f"p5-deadletter-{batch_size}-{suffix}",
    })  # fmt: skip
    clock = ManualClock(ms_to_datetime(events[0].clock_ms))
    with contextlib.ExitStack() as opened:  # each role's runtime closes its clients at the end
        consumer = opened.enter_context(contextlib.closing(Role.build(settings, clock)))
        timer = opened.enter_context(contextlib.closing(Role.build(settings, clock)))
        consumer_timed, timer_timed = consumer.timer.snapshot(), timer.timer.snapshot()
        consumer_ops, timer_ops = consumer.counter.total(), timer.counter.total()
        azurite_before = azurite.cpu_s()
        counts = Counts()

        def tick() -> Counts:
            """`functions.transform.run_timer` without its logging and telemetry."""
            rt = timer.rt
            return rt.service.run_timer(
                rt.tuning.timer_batch, rt.tuning.timer_max_seconds, time.monotonic
            ).counts

        next_tick = events[0].clock_ms + TIMER_EVERY_MS
        for start in range(0, len(events), batch_size):
            chunk = events[start : start + batch_size]
            now = chunk[-1].clock_ms
            while next_tick <= now:  # the timer fires on its schedule between batches
                clock.set(ms_to_datetime(next_tick))
                counts.add(timer.timed(tick))
                next_tick += TIMER_EVERY_MS
            clock.set(ms_to_datetime(now))
            deliveries = deliveries_of(chunk, partition, start)
            counts.add(consumer.timed(partial(apply_batch, consumer.rt, deliveries)))
        # Past every grace and idle period: the timer writes and expires what is still open.
        timing = consumer.rt.service.timing
        clock.set(ms_to_datetime(events[-1].clock_ms + max(timing.grace_ms, timing.idle_ms) + 1))
        counts.add(timer.timed(tick))
        azurite_cpu = azurite.cpu_s() - azurite_before
        me = counts.micro_events
        roles = {
            "consumer": role_figures(consumer, me, consumer_ops, consumer_timed),
            "timer": role_figures(timer, me, timer_ops, timer_timed),
        }
        wall = consumer.wall_s + timer.wall_s
        ops = (
            roles["consumer"]["storage_operations"]["total"]
            + roles["timer"]["storage_operations"]["total"]
        )
        return {
            "batch_size": batch_size,
            "micro_events": me,
            "counts": counts.as_dict(),
            "partition_micro_events_per_s": roles["consumer"]["micro_events_per_s"],
            "one_process_micro_events_per_s": round(me / wall, 1) if wall else 0.0,
            "operations_per_micro_event": round(ops / me, 4) if me else 0.0,
            **roles,
            "azurite_cpu_s": round(azurite_cpu, 3),
            "stored": stored_sizes(azurite.connection_string, settings),
        }


def apply_batch(rt: TransformRuntime, deliveries: list[Delivery]) -> Counts:
    """`functions.transform.consume` without its logging and telemetry (first attempt)."""
    return rt.service.process_batch(deliveries, last_attempt=False).counts


def role_figures(
    role: Role, micro_events: int, ops_before: OperationCounts, timed_before: dict[str, RequestTime]
) -> dict[str, Any]:
    """What one role did per micro-event of the partition, and where its time went."""
    me = micro_events
    ops = _minus(role.counter.total(), ops_before)
    timed = _timed_minus(role.timer.snapshot(), timed_before)
    wall, cpu = role.wall_s, role.cpu_s
    storage = [timed[k] for k in STORAGE_KINDS if k in timed]
    storage_wall = sum(t.wall_s for t in storage)
    storage_cpu = sum(t.cpu_s for t in storage)
    storage_wait = sum(t.wait_s for t in storage)
    unaccounted = max(wall - cpu - storage_wait, 0.0)
    model_s_per_me = (cpu + storage_wait) / me if me else 0.0
    return {
        "invocations": role.invocations,
        "micro_events_per_s": round(me / wall, 1) if wall else 0.0,
        "model_micro_events_per_s": round(1 / model_s_per_me, 1) if model_s_per_me else 0.0,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_micro_event": round(1000 * cpu / me, 4) if me else 0.0,
        "where_the_time_goes": {
            "storage_round_trips_s": round(storage_wall, 3),
            "storage_waiting_s": round(storage_wait, 3),
            "storage_sdk_cpu_s": round(storage_cpu, 3),
            "other_cpu_s": round(max(cpu - storage_cpu, 0.0), 3),
            "unaccounted_s": round(unaccounted, 3),
            "waiting_share": round(storage_wait / wall, 3) if wall else 0.0,
            "cpu_share": round(cpu / wall, 3) if wall else 0.0,
            "unaccounted_share": round(unaccounted / wall, 3) if wall else 0.0,
        },
        "requests": {kind: t.as_dict() for kind, t in sorted(timed.items())},
        "storage_operations": ops.as_dict(),
        "operations_per_micro_event": round(ops.total / me, 4) if me else 0.0,
        "table_entities_per_micro_event": round(ops.table_entities / me, 4) if me else 0.0,
    }


def _minus(after: OperationCounts, before: OperationCounts) -> OperationCounts:
    a, b = after.as_dict(with_total=False), before.as_dict(with_total=False)
    return OperationCounts(**{k: a[k] - b[k] for k in a})


def _timed_minus(
    after: dict[str, RequestTime], before: dict[str, RequestTime]
) -> dict[str, RequestTime]:
    out: dict[str, RequestTime] = {}
    for kind, total in after.items():
        was = before.get(kind, RequestTime())
        if total.count > was.count:
            out[kind] = RequestTime(
                total.count - was.count, total.wall_s - was.wall_s, total.cpu_s - was.cpu_s
            )
    return out


def stored_sizes(connection_string: str, settings: TransformSettings) -> dict[str, float]:
    """Mean bytes of a record blob and of a conversation's state row, as stored."""
    with (
        BlobServiceClient.from_connection_string(connection_string) as blobs,
        TableServiceClient.from_connection_string(connection_string) as tables,
    ):
        container = blobs.get_container_client(settings.records_container)
        record_sizes = [blob.size for blob in container.list_blobs()]
        table = tables.get_table_client(settings.state_table)
        state_sizes = [
            sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in entity.values())
            for entity in table.list_entities()
            if not str(entity.get("RowKey", "")).startswith("!")
        ]
    return {
        "records": len(record_sizes),
        "record_bytes_mean": round(sum(record_sizes) / len(record_sizes)) if record_sizes else 0,
        "state_rows": len(state_sizes),
        "state_bytes_mean": round(sum(state_sizes) / len(state_sizes)) if state_sizes else 0,
    }


def core_cpu_ms(events: list[HubEvent], batch_size: int) -> float:
    """CPU ms per micro-event of the transform core alone on the same events: the batch service
    over state kept as objects, no storage (`bench.p1_transform.run_core`)."""
    started = time.process_time()
    micro_events = run_core([e.body for e in events], batch_size)
    return round(1000 * (time.process_time() - started) / micro_events, 4)


def machine_load() -> dict[str, Any]:
    """How busy the machine was (the figures share its cores with everything else)."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1_5_15": [round(one, 2), round(five, 2), round(fifteen, 2)],
            "nice": os.nice(0), "cpus": os.cpu_count()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=8000)
    parser.add_argument("--arrivals-per-minute", type=float, default=600.0)
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--batch-sizes", default="100,500")
    args = parser.parse_args()
    if not 0 <= args.partition < args.partitions:
        parser.error(f"--partition must be 0..{args.partitions - 1}, got {args.partition}")
    try:
        sizes = [int(size) for size in args.batch_sizes.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        parser.error(f"--batch-sizes must be positive integers, got {args.batch_sizes!r}")
    logging.disable(logging.WARNING)  # dead-letter warnings are part of the input, not news
    folder = generated_input(
        args.profile, args.conversations,
        knobs=["--arrivals-per-minute", f"{args.arrivals_per_minute:g}"],
    )  # fmt: skip
    split = split_for_partition(folder, args.partitions, args.partition)
    if not split.partition:
        raise SystemExit(f"partition {args.partition} of {args.partitions} received no events")
    results: dict[str, Any] = {
        "profile": args.profile,
        "arrivals_per_minute": args.arrivals_per_minute,
        "data_set": {
            "conversations": split.conversations,
            "deliveries": split.deliveries,
            "eventhub_events": split.events,
            "micro_events": split.micro_events,
            "micro_events_per_conversation": round(split.micro_events / split.conversations, 3),
            "deliveries_per_conversation": round(split.deliveries / split.conversations, 3),
            "events_per_delivery": round(split.events / split.deliveries, 4),
            "event_bytes_mean": round(split.event_bytes / split.events),
        },
        "partitions": args.partitions,
        "partition": args.partition,
        "partition_events": len(split.partition),
        "partition_micro_events": sum(e.micro_events for e in split.partition),
        "load_before": machine_load(),
    }
    with Azurite() as azurite:
        for size in sizes:
            figures = run_partition(azurite, split.partition, size, args.partition)
            figures["core_cpu_ms_per_micro_event"] = core_cpu_ms(split.partition, size)
            results[f"batch_{size}"] = figures
    results["load_after"] = machine_load()
    write_result("p5_partition", results)


if __name__ == "__main__":
    main()
