"""The commands that talk to a running pipeline: `send`, `replay`, `run` (registered in `cli`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapters.webhook import EVENTBRIDGE_MAX_EVENT_AGE_S, RetryPolicy
from simulator.cli_common import Profile, errors
from simulator.errors import ExitCode, PipelineError
from simulator.generate.dataset import DELIVERIES_FILE
from simulator.generate.profiles import parse_media_types
from simulator.report import show_verify
from simulator.run.faults import FAULT_KINDS, FaultPlan
from simulator.run.run_report import table as run_table
from simulator.run.runner import REPORT_HTML, REPORT_JSON, RunConfig, RunResult
from simulator.run.runner import run as run_pipeline
from simulator.run.runstack import Tuning
from simulator.send.delivery import Delivery, read_deliveries
from simulator.send.http_target import DEFAULT_FUNCTION_KEY
from simulator.send.replay_source import BLOB_SOURCE, Filters, load
from simulator.send.send_report import send_progress, send_table
from simulator.send.sending import TargetSpec
from simulator.send.sending import send as send_deliveries
from simulator.send.sendlog import SEND_LOG_FILE, write_log
from simulator.send.stats import SendSummary

Target = Annotated[
    str | None,
    typer.Option(
        "--target",
        envvar="SIM_TARGET",
        metavar="URL",
        help="Ingest URL (http://127.0.0.1:7071 means its /api/v1/genesys/events route).",
    ),
]
EventHub = Annotated[
    bool,
    typer.Option(
        "--eventhub",
        envvar="SIM_EVENTHUB",
        help="Send straight to the hub (EventHubConnection, EVENTHUB_NAME), bypassing ingest.",
    ),
]
Rate = Annotated[
    float,
    typer.Option(envvar="SIM_RATE", min=0.0, help="Target requests/s, open loop (0: unpaced)."),
]
Concurrency = Annotated[
    int, typer.Option(envvar="SIM_CONCURRENCY", min=1, help="Requests in flight at most.")
]
Secret = Annotated[
    str | None,
    typer.Option(
        envvar="SIM_WEBHOOK_SECRET",
        help="Sign bodies with X-Signature-256 (HMAC-SHA256), as WEBHOOK_SECRET expects.",
        show_default=False,
    ),
]
Retries = Annotated[
    int, typer.Option(envvar="SIM_RETRIES", min=0, help="Retries on 5xx and timeouts.")
]
RetryDelay = Annotated[
    float, typer.Option(envvar="SIM_RETRY_DELAY", min=0.0, help="First retry delay, seconds.")
]
Backoff = Annotated[
    float, typer.Option(envvar="SIM_BACKOFF", min=1.0, help="Delay multiplier per retry.")
]
Timeout = Annotated[
    float, typer.Option(envvar="SIM_TIMEOUT", min=0.1, help="Seconds before a try times out.")
]
EventBridgeRoute = Annotated[
    bool,
    typer.Option(
        "--eventbridge-route/--no-eventbridge-route",
        envvar="SIM_EVENTBRIDGE_ROUTE",
        help="Send EventBridge events as an API destination does: its headers, 5-s timeout, "
        "429/5xx retries with jittered backoff, given up past --max-event-age (off: as a relay).",
    ),
]
MaxEventAge = Annotated[
    float,
    typer.Option(
        envvar="SIM_MAX_EVENT_AGE",
        min=1.0,
        help="MaximumEventAgeInSeconds of the EventBridge route (the template's default).",
    ),
]
FunctionKey = Annotated[
    str,
    typer.Option(
        envvar="SIM_FUNCTION_KEY",
        help="The function key the EventBridge connection sends as x-functions-key.",
    ),
]
Settings = Annotated[
    Path | None,
    typer.Option(
        envvar="SIM_SETTINGS",
        metavar="FILE",
        help="App settings for --eventhub and Blob (default ./local.settings.json; "
        "/dev/null: the environment only).",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", envvar="SIM_QUIET", help="No progress bars.")]


def _deliveries(source: Path) -> list[Delivery]:
    path = source / DELIVERIES_FILE if source.is_dir() else source
    return list(read_deliveries(path))


def _send_and_report(
    deliveries: list[Delivery],
    spec: TargetSpec,
    *,
    rate: float,
    log: Path,
    quiet: bool,
    title: str,
) -> None:
    err, out = Console(stderr=True), Console()
    with send_progress(err, len(deliveries), quiet=quiet) as progress:
        result = send_deliveries(deliveries, spec, rate=rate, on_outcome=progress)
    write_log(log, result.outcomes)
    summary = SendSummary.of(result.outcomes)
    out.print(send_table(result, summary, f"{title} → {spec.describe()}"))
    out.print(f"send log: {log}", highlight=False)
    if summary.gave_up:
        msg = (
            f"{summary.gave_up} deliveries were given up after {spec.policy.retries} retries "
            f"({summary.expired} EventBridge events past the maximum event age; see {log}); is "
            "the target up? `python -m devstack status`"
        )
        raise PipelineError(msg)


def show_run(out: Console, result: RunResult) -> None:
    """The verify tables when something differs, then the run's figures and files."""
    if not result.report.ok:
        show_verify(out, result.report, 20)
    out.print(run_table(result.document))
    for name in (REPORT_JSON, REPORT_HTML):
        out.print(f"{name}: {result.folder / name}", highlight=False)


def _spec(
    *,
    target: str | None,
    eventhub: bool,
    secret: str | None,
    policy: RetryPolicy,
    concurrency: int,
    timeout: float,
    settings: Path | None,
    eventbridge_route: bool = True,
    max_event_age: float = EVENTBRIDGE_MAX_EVENT_AGE_S,
    function_key: str = DEFAULT_FUNCTION_KEY,
) -> TargetSpec:
    return TargetSpec(
        url=target,
        eventhub=eventhub,
        secret=secret.encode() if secret else None,
        policy=policy,
        eventbridge_policy=RetryPolicy.eventbridge(policy.retries, max_event_age),
        eventbridge_route=eventbridge_route,
        function_key=function_key,
        concurrency=concurrency,
        timeout_s=timeout,
        settings=settings,
    )


def send(
    *,
    folder: Annotated[
        Path,
        typer.Argument(
            envvar="SIM_OUT", help="A `generate` folder (its deliveries.jsonl) or a JSONL file."
        ),
    ],
    target: Target = None,
    eventhub: EventHub = False,
    rate: Rate = 100.0,
    concurrency: Concurrency = 16,
    secret: Secret = None,
    retries: Retries = 5,
    retry_delay: RetryDelay = 1.0,
    backoff: Backoff = 2.0,
    timeout: Timeout = 15.0,
    eventbridge_route: EventBridgeRoute = True,
    max_event_age: MaxEventAge = EVENTBRIDGE_MAX_EVENT_AGE_S,
    function_key: FunctionKey = DEFAULT_FUNCTION_KEY,
    settings: Settings = None,
    log: Annotated[
        Path | None,
        typer.Option(
            envvar="SIM_LOG",
            metavar="FILE",
            help="Per-delivery log (default: FOLDER/send.jsonl); `verify` reads it.",
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Send the deliveries, in order, to ingest (HTTP) or straight to the hub.

    Over HTTP, a delivery that is one EventBridge event goes as an EventBridge API destination
    sends it (unsigned, `x-functions-key`, 429/5xx retries with jitter up to --retries and
    --max-event-age); everything else with Genesys-style retries, signed with --secret.
    """
    err = Console(stderr=True)
    with errors(err):
        policy = RetryPolicy(retries, retry_delay, backoff)
        spec = _spec(
            target=target,
            eventhub=eventhub,
            secret=secret,
            policy=policy,
            concurrency=concurrency,
            timeout=timeout,
            settings=settings,
            eventbridge_route=eventbridge_route,
            max_event_age=max_event_age,
            function_key=function_key,
        )
        deliveries = _deliveries(folder)
        log_path = log or (folder if folder.is_dir() else folder.parent) / SEND_LOG_FILE
        _send_and_report(deliveries, spec, rate=rate, log=log_path, quiet=quiet, title="send")


def replay(
    *,
    source: Annotated[
        str,
        typer.Argument(
            help=f"`{BLOB_SOURCE}` (dead letters in Blob), a deadletter.jsonl or JSONL capture, "
            "or a folder holding one."
        ),
    ],
    target: Target = None,
    eventhub: EventHub = False,
    stage: Annotated[
        list[str] | None,
        typer.Option(envvar="SIM_STAGE", help="Only dead letters of this stage (repeatable)."),
    ] = None,
    reason: Annotated[
        list[str] | None,
        typer.Option(envvar="SIM_REASON", help="Only dead letters with this reason (repeatable)."),
    ] = None,
    rate: Rate = 50.0,
    concurrency: Concurrency = 8,
    secret: Secret = None,
    retries: Retries = 5,
    retry_delay: RetryDelay = 1.0,
    backoff: Backoff = 2.0,
    timeout: Timeout = 15.0,
    settings: Settings = None,
    log: Annotated[
        Path,
        typer.Option(envvar="SIM_LOG", metavar="FILE", help="Per-delivery log of the replay."),
    ] = Path("replay.jsonl"),
    quiet: Quiet = False,
) -> None:
    """Resend dead letters (their original bytes) or a JSONL capture, to ingest or the hub."""
    err = Console(stderr=True)
    with errors(err):
        policy = RetryPolicy(retries, retry_delay, backoff)
        spec = _spec(
            target=target,
            eventhub=eventhub,
            secret=secret,
            policy=policy,
            concurrency=concurrency,
            timeout=timeout,
            settings=settings,
            eventbridge_route=False,  # an operator resends them, not EventBridge
        )
        filters = Filters(frozenset(stage or ()), frozenset(reason or ()))
        deliveries = load(source, filters=filters, settings=settings)
        if not deliveries:
            Console().print(f"nothing to replay in {source}")
            return
        _send_and_report(deliveries, spec, rate=rate, log=log, quiet=quiet, title="replay")


def run(
    *,
    profile: Annotated[
        Profile, typer.Option(envvar="SIM_PROFILE", help="Preset knobs (see `profiles`).")
    ] = Profile.realistic,
    conversations: Annotated[
        int,
        typer.Option("--conversations", "-n", envvar="SIM_CONVERSATIONS", min=1, help="How many."),
    ] = 200,
    seed: Annotated[int, typer.Option(envvar="SIM_SEED", help="Same seed, same data set.")] = 1,
    out: Annotated[
        Path | None,
        typer.Option(envvar="SIM_OUT", help="Run folder (default: runs/<profile>-<n>-<time>)."),
    ] = None,
    rate: Rate = 50.0,
    concurrency: Concurrency = 16,
    faults: Annotated[
        bool,
        typer.Option(
            "--faults",
            envvar="SIM_FAULTS",
            help="Kill -9 / stop parts of the local stack during the send, in turn.",
        ),
    ] = False,
    fault_kinds: Annotated[
        str, typer.Option(envvar="SIM_FAULT_KINDS", help="Comma list of host, eventhubs, azurite.")
    ] = ",".join(FAULT_KINDS),
    fault_every: Annotated[
        float, typer.Option(envvar="SIM_FAULT_EVERY", min=0.1, help="Seconds between faults.")
    ] = 30.0,
    fault_duration: Annotated[
        float, typer.Option(envvar="SIM_FAULT_DURATION", min=0.0, help="Seconds each lasts.")
    ] = 5.0,
    fault_first: Annotated[
        float,
        typer.Option(envvar="SIM_FAULT_FIRST", min=0.0, help="Seconds before the first fault."),
    ] = 10.0,
    grace: Annotated[
        float,
        typer.Option(envvar="SIM_GRACE", min=0.1, help="GRACE_PERIOD_SECONDS of the run's host."),
    ] = 5.0,
    idle: Annotated[
        float,
        typer.Option(envvar="SIM_IDLE", min=0.1, help="IDLE_TIMEOUT_SECONDS of the run's host."),
    ] = 20.0,
    timer: Annotated[
        int,
        typer.Option(envvar="SIM_TIMER", min=1, max=59, help="Timer period of the run's host, s."),
    ] = 2,
    drain_timeout: Annotated[
        float,
        typer.Option(envvar="SIM_DRAIN_TIMEOUT", min=1.0, help="Longest wait for idle, s."),
    ] = 300.0,
    stack_dir: Annotated[
        Path,
        typer.Option(
            envvar="SIM_STACK_DIR",
            help="State folder of a `devstack up` stack to reuse when it is healthy.",
        ),
    ] = Path(".devstack"),
    fresh_stack: Annotated[
        bool,
        typer.Option(
            "--fresh-stack", envvar="SIM_FRESH_STACK", help="Never reuse: a private stack."
        ),
    ] = False,
    keep_stack: Annotated[
        bool, typer.Option("--keep-stack", envvar="SIM_KEEP_STACK", help="Leave it running.")
    ] = False,
    retries: Retries = 5,
    retry_delay: RetryDelay = 1.0,
    backoff: Backoff = 2.0,
    media_types: Annotated[
        str | None,
        typer.Option(
            envvar="SIM_MEDIA_TYPES",
            help="INGEST_MEDIA_TYPES of the run's host, which the truth assumes, e.g. voice,chat "
            "(all: every type; default: the profile's).",
        ),
    ] = None,
    eventbridge_route: EventBridgeRoute = True,
    max_event_age: MaxEventAge = EVENTBRIDGE_MAX_EVENT_AGE_S,
    quiet: Quiet = False,
) -> None:
    """Generate, start the local stack, send (with faults), wait until idle, verify, report.

    EventBridge events go as an API destination sends them, so a data set that has some runs
    a host without WEBHOOK_SECRET (EventBridge cannot sign), as that route is deployed.
    """
    err, out_console = Console(stderr=True), Console()
    with errors(err):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = out or Path("runs") / f"{profile.value}-{conversations}-{stamp}"
        plan = None
        if faults:
            plan = FaultPlan(
                FaultPlan.parse_kinds(fault_kinds), fault_every, fault_duration, fault_first
            )
        config = RunConfig(
            profile=profile.value,
            conversations=conversations,
            seed=seed,
            out=folder,
            rate=rate,
            concurrency=concurrency,
            faults=plan,
            tuning=Tuning(grace_s=grace, idle_s=idle, timer_s=timer),
            policy=RetryPolicy(retries, retry_delay, backoff),
            eventbridge_policy=RetryPolicy.eventbridge(retries, max_event_age),
            eventbridge_route=eventbridge_route,
            media_types=None if media_types is None else parse_media_types(media_types),
            reuse_dir=None if fresh_stack else stack_dir,
            drain_timeout_s=drain_timeout,
            keep_stack=keep_stack,
            quiet=quiet,
        )
        result = run_pipeline(config, err)
        show_run(out_console, result)
        if not result.report.ok:
            raise typer.Exit(int(ExitCode.MISMATCH))
