"""`run`: generate → local stack → send (with faults) → wait until idle → verify → report.

Timings and latencies are real (wall clock); the data set is generated as by `generate`, with
the run's grace period as its `grace_seconds` knob, so the truth's timing checks match what
the run's pipeline does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.status import Status

from adapters.settings import OutputSettings
from adapters.webhook import RetryPolicy
from simulator.errors import PipelineError
from simulator.generate import profiles
from simulator.generate.dataset import DELIVERIES_FILE, write
from simulator.generate.dataset import generate as generate_dataset
from simulator.report import write_json
from simulator.run.faults import FaultInjector, FaultPlan
from simulator.run.idle import IdleState
from simulator.run.run_report import (
    consumer_counts,
    conversation_sends,
    end_to_end,
    html_page,
    ingest_heartbeats,
    route_check,
)
from simulator.run.runstack import RunStack, Tuning
from simulator.send.delivery import EVENTBRIDGE, read_deliveries
from simulator.send.http_target import route_of
from simulator.send.pacing import SendResult
from simulator.send.send_report import send_progress
from simulator.send.sending import TargetSpec, send
from simulator.send.sendlog import SEND_LOG_FILE, allowances, conversations_by_line, write_log
from simulator.send.stats import SendSummary
from simulator.verify.blob_source import BlobRecordSource
from simulator.verify.expected import load_expected
from simulator.verify.verdict import Report, verify

Json = dict[str, Any]
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
VERIFY_JSON = "verify.json"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything `run` was asked to do."""

    profile: str
    conversations: int
    seed: int
    out: Path
    rate: float = 50.0
    concurrency: int = 16
    faults: FaultPlan | None = None
    tuning: Tuning = field(default_factory=Tuning)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    eventbridge_policy: RetryPolicy = field(default_factory=RetryPolicy.eventbridge)
    eventbridge_route: bool = True
    """EventBridge events go as an API destination sends them (and the host is unsigned)."""
    media_types: tuple[str, ...] | None = None
    """INGEST_MEDIA_TYPES of the run's host and the truth's (None: the profile's)."""
    reuse_dir: Path | None = None
    """The devstack state folder of a stack to reuse when healthy; None: always private."""
    drain_timeout_s: float = 300.0
    keep_stack: bool = False
    quiet: bool = False


@dataclass(slots=True)
class RunResult:
    report: Report
    document: Json
    folder: Path


@dataclass(slots=True)
class _Clock:
    marks: dict[str, float] = field(default_factory=dict)
    last: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.marks[name] = round(now - self.last, 3)
        self.last = now


def host_signed(lines: Iterable[bytes], *, eventbridge_route: bool) -> bool:
    """Whether the run's host may require signed requests: not when any delivery goes the
    EventBridge route, which cannot sign (foreign-topic faults make EventBridge events
    whatever the format mix says)."""
    return not (eventbridge_route and any(route_of(line) == EVENTBRIDGE for line in lines))


def run(config: RunConfig, err: Console) -> RunResult:
    """Do the whole run; the stack is stopped at the end whatever happens (unless kept)."""
    clock = _Clock()
    say = _say(err, config.quiet)
    overrides: dict[str, Any] = {"grace_seconds": config.tuning.grace_s}
    if config.media_types is not None:
        overrides["media_types"] = config.media_types
    knobs = profiles.resolve(config.profile, overrides)
    # The host runs with the filter the truth assumes.
    tuning = dataclasses.replace(config.tuning, media_types=",".join(knobs.media_types))
    config = dataclasses.replace(config, tuning=tuning)
    dataset = generate_dataset(
        conversations=config.conversations, seed=config.seed, profile=config.profile, knobs=knobs
    )
    signed = host_signed(dataset.lines, eventbridge_route=config.eventbridge_route)
    write(dataset, config.out)
    counts = dataset.manifest["counts"]
    say(
        f"generated {counts['conversations']:,} conversations, {counts['deliveries']:,} "
        f"deliveries in {config.out}"
    )
    del dataset  # large runs: keep only the files
    clock.lap("generate")

    stack = RunStack(config.out, config.tuning, reuse_dir=config.reuse_dir, signed=signed)
    say(f"starting: {stack.describe()}")
    stack.start()
    try:
        clock.lap("stack")
        return _run_on(stack, config, clock, err)
    finally:
        if config.keep_stack:
            say(f"stack left running: {stack.describe()}")
        else:
            stack.stop()


def _run_on(stack: RunStack, config: RunConfig, clock: _Clock, err: Console) -> RunResult:
    say = _say(err, config.quiet)
    deliveries = list(read_deliveries(config.out / DELIVERIES_FILE))
    spec = TargetSpec(
        url=stack.ingest_url,
        secret=stack.secret.encode() if stack.secret is not None else None,
        policy=config.policy,
        eventbridge_policy=config.eventbridge_policy,
        eventbridge_route=config.eventbridge_route,
        concurrency=config.concurrency,
    )
    injector = FaultInjector(config.faults, stack) if config.faults is not None else None
    started_at = time.time()
    if injector is not None:
        injector.start()
    try:
        with send_progress(err, len(deliveries), quiet=config.quiet) as progress:
            result = send(deliveries, spec, rate=config.rate, on_outcome=progress)
    finally:
        faults = injector.stop() if injector is not None else []
    write_log(config.out / SEND_LOG_FILE, result.outcomes)
    clock.lap("send")
    if injector is not None and injector.failed:
        bad = injector.failed[0]
        msg = f"fault {bad.kind}: the part did not come back ({bad.error}); see {stack.state_dir}"
        raise PipelineError(msg)

    drained_at, idle = _wait_idle(stack, config, err)
    clock.lap("drain")
    say(f"pipeline {'idle' if idle.idle else 'NOT idle'}: {idle.describe()}")

    target = OutputSettings.from_env(stack.settings())
    expected = load_expected(config.out)
    with BlobRecordSource(target) as source:
        report = verify(
            expected,
            source,
            idle_seconds=config.tuning.idle_s,
            allowances=allowances(config.out / DELIVERIES_FILE, result.outcomes),
        )
    consumer = consumer_counts(stack.host_log)
    check = route_check(
        expected.manifest,
        consumer,
        ingest_heartbeats(stack.host_log),
        _set_aside(stack, expected.manifest.get("filtered", [])),
        faults=bool(faults),
    )
    report = dataclasses.replace(
        report,
        problems=report.problems + tuple(check.problems),
        notes=report.notes + tuple(check.notes),
    )
    clock.lap("verify")

    by_line = conversations_by_line(config.out / DELIVERIES_FILE)
    spans = conversation_sends(result.outcomes, by_line)
    document = _document(
        config,
        stack,
        result,
        faults,
        idle,
        report,
        clock,
        started_at,
        counts=expected.manifest["counts"],
        consumer=consumer,
    )
    document["route"] = check.document
    document["end_to_end"] = end_to_end(spans, source.finalized, source.modified)
    micro_events = document["dataset"]["micro_events"]
    seconds = max((drained_at or time.time()) - started_at, 1e-9)
    document["throughput"] = {
        "seconds": round(seconds, 3),
        "micro_events_per_s": round(micro_events / seconds, 1),
        "deliveries_per_s": round(len(deliveries) / seconds, 1),
    }
    write_json(config.out / VERIFY_JSON, report.as_json())
    write_json(config.out / REPORT_JSON, document)
    html = html_page(document, result.outcomes, source.modified.values())
    (config.out / REPORT_HTML).write_text(html, encoding="utf-8")
    return RunResult(report, document, config.out)


def _set_aside(stack: RunStack, filtered: list[Json]) -> dict[str, int | None]:
    """Per conversation the truth expects set aside: its stored micro-events if the state says
    it is set aside by the media filter, else None (read from the state table)."""
    if not filtered:
        return {}
    found: dict[str, int | None] = {}
    with stack.probe() as probe:
        for entry in filtered:
            cid = entry["conversation_id"]
            stored = probe.states.stored(cid)
            state = None if stored is None else stored.state
            aside = state is not None and state.filtered_at_ms is not None
            found[cid] = len(state.events) if state is not None and aside else None
    return found


def _wait_idle(stack: RunStack, config: RunConfig, err: Console) -> tuple[float | None, IdleState]:
    """Poll until idle; returns when the hub was first seen drained, and the last look."""
    drained: list[float] = []

    def seen(state: IdleState, status: Status | None) -> None:
        if not drained and state.error is None and not any(state.backlog.values()):
            drained.append(time.time())
        if status is not None:
            status.update(f"waiting until idle: {state.describe()}")

    with stack.probe() as probe:
        if config.quiet:
            state = probe.wait(config.drain_timeout_s, on_look=lambda s: seen(s, None))
        else:
            with err.status("waiting until idle") as status:
                state = probe.wait(config.drain_timeout_s, on_look=lambda s: seen(s, status))
    return (drained[0] if drained else None), state


def _document(  # noqa: PLR0917 - one call site, every argument a different part
    config: RunConfig,
    stack: RunStack,
    result: SendResult,
    faults: list[Any],
    idle: IdleState,
    report: Report,
    clock: _Clock,
    started_at: float,
    *,
    counts: Json,
    consumer: Json,
) -> Json:
    """`report.json` but for what `_run_on` adds; `counts` are the manifest's, `consumer` the
    host log's totals (both already read for verify)."""
    summary = SendSummary.of(result.outcomes)
    verdict = report.as_json()
    return {
        "format": "simulator-run/1",
        "name": config.out.name,
        "profile": config.profile,
        "seed": config.seed,
        "conversations": config.conversations,
        "started_at": started_at,
        "stack": stack.describe(),
        "settings": {**config.tuning.environment(), **stack.names.environment()},
        "dataset": {
            "micro_events": counts["micro_events"],
            "deliveries": counts["deliveries"],
            "duplicate_payloads": counts["duplicates"]["payloads"],
            "malformed": counts["malformed"]["total"],
            "late_payloads": counts["late"]["payloads"],
        },
        "rate": {
            "target": config.rate,
            "achieved": round(result.achieved_rate, 2),
            "concurrency": config.concurrency,
        },
        "send": summary.as_json(),
        "faults": [f.as_json() for f in faults],
        "fault_plan": None
        if config.faults is None
        else {
            "kinds": list(config.faults.kinds),
            "every_s": config.faults.every_s,
            "duration_s": config.faults.duration_s,
        },
        "idle": {"reached": idle.idle, "state": idle.describe()},
        "consumer": consumer,
        "verify": {"ok": report.ok, "summary": verdict["summary"]},
        "timings_s": clock.marks,
    }


def _say(err: Console, quiet: bool) -> Callable[[str], None]:
    def say(text: str) -> None:
        if not quiet:
            err.print(text, highlight=False)

    return say
