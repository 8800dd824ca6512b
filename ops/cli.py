"""`python -m ops`: consumer lag, checkpoint resets, dead letters, conversation state, erasure,
and the capacity model (`ops capacity`, docs/capacity.md: no settings, no connection).

Settings are the app's own (docs/deploy.md, configuration table), from the environment over
`local.settings.json` Values (`--settings` picks another file). Exit codes: 0 success,
1 failure, 2 bad settings or arguments, 3 not found, 4 refused as unsafe, 5 a service did not
answer; `lag` exits 6 when a partition is flagged (ahead of the hub, or expired unread);
`erase --apply` exits 1 when something is still there after it deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from adapters import lag as lag_module
from adapters import wiring
from adapters.deadletter_store import REPLAY_STATUS, REPLAYED_AT, DeadLetterStore
from adapters.errors import Unreachable
from adapters.settings import (
    HubSettings,
    IngestSettings,
    SettingsError,
    TransformSettings,
    app_environment,
)
from adapters.webhook import RetryPolicy
from ops import capacity as capacity_model
from ops import deadletters as dl
from ops import erase as erase_module
from ops import reset as reset_module
from ops import state as state_module
from ops.errors import SETTINGS_EXIT, UNREACHABLE_EXIT, NotFound, OpsError, UsageError
from ops.genesys.cli import app as genesys_app
from transform.errors import StorageUnavailable

FLAGGED_EXIT = 6

app = typer.Typer(
    name="ops",
    help="Operate the pipeline: lag, checkpoints, dead letters, conversation state, erasure, "
    "capacity.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
checkpoint_app = typer.Typer(help="The consumer's Event Hubs checkpoints.", no_args_is_help=True)
deadletters_app = typer.Typer(help="Dead letters: list, show, replay.", no_args_is_help=True)
state_app = typer.Typer(help="Conversation state in Table Storage.", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(state_app, name="state")
app.add_typer(genesys_app, name="genesys")

console = Console()
err_console = Console(stderr=True)
"""Errors and the warnings of a failing exit go to stderr, so `--json` on stdout stays JSON."""
SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        envvar="OPS_SETTINGS",
        help="local.settings.json to read Values from (the environment wins). "
        "Default: ./local.settings.json when it exists.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load_env(settings_file: Path | None) -> dict[str, str]:
    """The environment over the settings file's Values (like `func start`)."""
    return app_environment(settings_file)


@contextmanager
def _errors() -> Iterator[None]:
    code: int
    try:
        yield
        return
    except OpsError as e:
        error: Exception = e
        code = e.exit_code
    except SettingsError as e:
        error, code = e, SETTINGS_EXIT
    except (Unreachable, StorageUnavailable) as e:
        error, code = e, UNREACHABLE_EXIT
    err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from error


def _print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# ---------------------------------------------------------------------- lag
@app.command()
def lag(*, settings: SettingsOption = None, as_json: JsonOption = False) -> None:
    """Per partition: last enqueued sequence number, checkpoint, events behind."""
    with _errors():
        hub = HubSettings.from_env(load_env(settings))
        with wiring.checkpoint_store(hub) as checkpoints:
            rows = lag_module.measure(wiring.hub_reader(hub), checkpoints, wiring.hub_address(hub))
    if as_json:
        _print_json(
            {
                "eventhub": hub.eventhub_name,
                "consumer_group": hub.consumer_group,
                "total": lag_module.total(rows),
                "partitions": [
                    {
                        "partition": r.partition,
                        "last_enqueued_sequence_number": None
                        if r.info.is_empty
                        else r.info.last_enqueued_sequence_number,
                        "checkpoint_sequence_number": None
                        if r.checkpoint is None
                        else r.checkpoint.sequence_number,
                        "lag": r.lag,
                        "state": str(r.state),
                        "checkpointed_at": None if r.checkpoint is None else r.checkpoint.updated,
                    }
                    for r in rows
                ],
            }
        )
    else:
        table = Table(title=f"{hub.eventhub_name} / {hub.consumer_group}")
        for column in ("partition", "last enqueued", "checkpoint", "lag", "state", "checkpointed"):
            table.add_column(column, justify="right" if column in ("lag",) else "left")
        for r in rows:
            table.add_row(
                r.partition,
                "-" if r.info.is_empty else str(r.info.last_enqueued_sequence_number),
                "-" if r.checkpoint is None else str(r.checkpoint.sequence_number),
                f"{r.lag:,}",
                str(r.state),
                _when(None if r.checkpoint is None else r.checkpoint.updated),
            )
        console.print(table)
        console.print(f"total lag: {lag_module.total(rows):,} events")
    flagged = [
        r for r in rows if r.state in (lag_module.LagState.AHEAD, lag_module.LagState.EXPIRED)
    ]
    for r in flagged:
        hint = (
            "the hub was recreated? `ops checkpoint reset --to start`"
            if r.state is lag_module.LagState.AHEAD
            else "events expired before they were processed; see docs/operations.md"
        )
        err_console.print(
            f"[yellow]partition {r.partition}: {r.state}[/] - {hint}", highlight=False
        )
    if flagged:
        raise typer.Exit(FLAGGED_EXIT)


# ---------------------------------------------------------------------- checkpoints
@checkpoint_app.command("reset")
def checkpoint_reset(
    *,
    to: Annotated[reset_module.Target, typer.Option("--to", help="Where to resume.")],
    partition: Annotated[
        list[str] | None, typer.Option("--partition", "-p", help="A partition (repeatable).")
    ] = None,
    all_partitions: Annotated[bool, typer.Option("--all", help="Every partition.")] = False,
    at_time: Annotated[
        datetime | None,
        typer.Option(
            "--time",
            help="With --to time: resume at the first event enqueued then "
            "or later (UTC unless an offset is given).",
        ),
    ] = None,
    sequence: Annotated[
        int | None,
        typer.Option("--sequence", help="With --to sequence: the next event to process."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Even while a consumer holds them.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, write nothing.")] = False,
    settings: SettingsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move checkpoints so the consumer resumes at the start, the latest, a time or a number."""
    with _errors():
        if bool(partition) == all_partitions:
            raise UsageError("name the partitions with --partition, or pass --all (not both)")
        if at_time is not None and at_time.tzinfo is None:
            at_time = at_time.replace(tzinfo=UTC)
        where = reset_module.Where(to, time=at_time, sequence=sequence)
        hub = HubSettings.from_env(load_env(settings))
        with wiring.checkpoint_store(hub) as checkpoints:
            moved = reset_module.reset(
                wiring.hub_reader(hub),
                checkpoints,
                wiring.hub_address(hub),
                where,
                partition or (),
                now=datetime.now(UTC),
                force=force,
                dry_run=dry_run,
            )
    if as_json:
        _print_json(
            [
                {
                    "partition": m.partition,
                    "before": None if m.before is None else m.before.sequence_number,
                    "after": m.after.sequence_number,
                    "offset": m.after.offset,
                    "resumes_at": m.resumes_at,
                    "written": not dry_run,
                }
                for m in moved
            ]
        )
        return
    table = Table(title=("would move" if dry_run else "moved") + f" to {to}")
    for column in ("partition", "checkpoint before", "checkpoint after", "resumes at"):
        table.add_column(column)
    for m in moved:
        table.add_row(
            m.partition,
            "-" if m.before is None else str(m.before.sequence_number),
            str(m.after.sequence_number),
            str(m.resumes_at),
        )
    console.print(table)


# ---------------------------------------------------------------------- dead letters
class ReplayTo(StrEnum):
    """Where replayed dead letters go."""

    hub = "hub"
    url = "url"


StageOption = Annotated[str | None, typer.Option("--stage", help="ingest or transform.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Exact reason.")]
SinceOption = Annotated[
    datetime | None, typer.Option("--since", formats=["%Y-%m-%d"], help="From this day (UTC).")
]
UntilOption = Annotated[
    datetime | None, typer.Option("--until", formats=["%Y-%m-%d"], help="To this day (UTC).")
]
ReplayedOption = Annotated[
    bool | None,
    typer.Option("--replayed/--not-replayed", help="Only letters replayed before, or not."),
]


def _filters(
    stage: str | None,
    reason: str | None,
    since: datetime | None,
    until: datetime | None,
    replayed: bool | None,
) -> dl.Filters:
    def day(value: datetime | None) -> date | None:
        return None if value is None else value.date()

    return dl.Filters(stage, reason, day(since), day(until), replayed)


def _letters(env: dict[str, str]) -> DeadLetterStore:
    """The dead-letter container (its client closes with the store: use it in a `with`)."""
    return wiring.deadletter_store(wiring.output_of(TransformSettings.from_env(env)))


def _find(store: DeadLetterStore, key: str) -> str:
    name = store.find(key)
    if name is None:
        raise NotFound(
            f"no dead letter {key!r} in container {store.name!r}; "
            "`python -m ops deadletters list` shows the ids and names there are"
        )
    return name


def _read(store: DeadLetterStore, name: str) -> tuple[Any, dict[str, str]]:
    found = store.read(name)
    if found is None:
        raise NotFound(f"no dead letter blob {name!r} in container {store.name!r}")
    return found


@deadletters_app.command("list")
def deadletters_list(
    *,
    stage: StageOption = None,
    reason: ReasonOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    replayed: ReplayedOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    settings: SettingsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dead letters by stage, reason and day."""
    with _errors(), _letters(load_env(settings)) as store:
        chosen = _filters(stage, reason, since, until, replayed)
        items = list(store.list(chosen.prefix(), chosen.keep, limit))
        container = store.name
    if as_json:
        _print_json([_listed(item) for item in items])
        return
    table = Table(title=f"dead letters in {container} ({len(items)})")
    for column in ("day", "stage", "reason", "id", "bytes", "replayed"):
        table.add_column(column)
    for item in items:
        table.add_row(
            str(item.day or "-"),
            item.stage,
            item.reason,
            item.deadletter_id,
            f"{item.size:,}",
            item.replayed_at or "-",
        )
    console.print(table)


def _listed(item: Any) -> dict[str, Any]:
    return {
        "name": item.name,
        "stage": item.stage,
        "reason": item.reason,
        "id": item.deadletter_id,
        "day": item.day,
        "bytes": item.size,
        "replayed_at": item.replayed_at,
    }


@deadletters_app.command("show")
def deadletters_show(
    key: Annotated[str, typer.Argument(help="A dead letter's id or blob name.")],
    *,
    settings: SettingsOption = None,
    as_json: JsonOption = False,
) -> None:
    """One dead letter: where it came from, why, and its original bytes."""
    with _errors(), _letters(load_env(settings)) as store:
        name = _find(store, key)
        letter, metadata = _read(store, name)
    if as_json:
        _print_json({"blob": name, "metadata": metadata, "letter": letter.model_dump()})
        return
    table = Table(show_header=False, title=name)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    document = letter.model_dump()
    raw = document.pop("raw")
    for field, value in document.items():
        table.add_row(field, str(value))
    for field in (REPLAYED_AT, REPLAY_STATUS):
        if field in metadata:
            table.add_row(field, metadata[field])
    console.print(table)
    console.print(raw, markup=False, highlight=False, soft_wrap=True)


@deadletters_app.command("replay")
def deadletters_replay(
    keys: Annotated[
        list[str] | None, typer.Argument(help="Ids or blob names; or select with the filters.")
    ] = None,
    *,
    to: Annotated[
        ReplayTo,
        typer.Option(
            "--to", help="hub: in-process ingest to Event Hubs; url: POST to the webhook."
        ),
    ] = ReplayTo.hub,
    url: Annotated[
        str | None, typer.Option("--url", help="The webhook URL (with --to url).")
    ] = None,
    function_key: Annotated[
        str | None,
        typer.Option(
            "--function-key",
            envvar="OPS_FUNCTION_KEY",
            help="The function key for --to url (better from OPS_FUNCTION_KEY).",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="HTTP retries on 5xx.")] = 5,
    stage: StageOption = None,
    reason: ReasonOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    replayed: ReplayedOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 1000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go.")] = False,
    settings: SettingsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resend dead letters through the ingest code; each is marked `replayed_at`."""
    with _errors():
        env = load_env(settings)
        with _letters(env) as store:
            filters = _filters(stage, reason, since, until, replayed)
            if keys:
                names = [_find(store, key) for key in keys]
            elif any(v is not None for v in (stage, reason, since, until, replayed)):
                names = [item.name for item in store.list(filters.prefix(), filters.keep, limit)]
            else:
                raise UsageError(
                    "name the dead letters to replay, or select them with --stage/--reason/--since/"
                    "--until/--not-replayed"
                )
            loaded = [(name, *_read(store, name)) for name in names]
            letters = [(name, letter) for name, letter, _ in loaded]
            if dry_run:
                results = [dl.Replayed(name, 0, "dry-run", "") for name in names]
            elif to is ReplayTo.url:
                if not url:
                    raise UsageError(
                        "--to url needs --url https://<app>.azurewebsites.net/api/v1/genesys/events"
                    )
                policy = RetryPolicy(retries=retries)
                secret = IngestSettings.from_env(env).secret_bytes
                results = dl.replay_to_url(
                    letters, url, function_key=function_key, secret=secret, policy=policy
                )
            else:
                results = dl.replay_to_hub(letters, IngestSettings.from_env(env))
            if not dry_run:
                for (name, _, metadata), result in zip(loaded, results, strict=True):
                    if result.outcome in ("accepted", "rejected"):
                        store.mark_replayed(name, metadata, result.outcome, datetime.now(UTC))
    if as_json:
        _print_json([_replayed(r) for r in results])
    else:
        table = Table(title=f"replayed {len(results)} to {to}")
        for column in ("blob", "status", "outcome", "detail"):
            table.add_column(column, overflow="fold")
        for r in results:
            table.add_row(r.name, str(r.status), r.outcome, r.detail)
        console.print(table)
    if any(r.outcome in ("unavailable", "refused") for r in results):
        raise typer.Exit(1)


def _replayed(r: dl.Replayed) -> dict[str, Any]:
    return {"blob": r.name, "status": r.status, "outcome": r.outcome, "detail": r.detail}


# ---------------------------------------------------------------------- state
@state_app.command("inspect")
def state_inspect(
    conversation_id: Annotated[str, typer.Argument(help="The conversation id, exactly.")],
    *,
    with_events: Annotated[bool, typer.Option("--events", help="List the micro-events.")] = False,
    settings: SettingsOption = None,
    as_json: JsonOption = False,
) -> None:
    """A conversation's decoded state, where it is stored, and its record's revision."""
    with _errors():
        transform = TransformSettings.from_env(load_env(settings))
        timing = transform.timing
        with (
            wiring.state_reader(transform) as states,
            wiring.record_reader(wiring.output_of(transform)) as records,
        ):
            inspected = state_module.inspect(
                states, records, conversation_id, f"table {transform.state_table!r}"
            )
    facts = state_module.summary(inspected, timing, transform.media)
    listed = state_module.events(inspected.state) if with_events else None
    if as_json:
        _print_json({**facts, "events_list": listed} if listed is not None else facts)
        return
    table = Table(show_header=False, title=f"conversation {conversation_id}")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for field, value in facts.items():
        table.add_row(field, "-" if value is None else str(value))
    console.print(table)
    if listed is not None:
        events_table = Table(title="micro-events in order")
        for column in ("timestamp", "action", "format", "order"):
            events_table.add_column(column)
        for event in listed:
            events_table.add_row(
                event["timestamp"], event["action"], event["format"], str(event["order"])
            )
        console.print(events_table)


# ---------------------------------------------------------------------- erasure
@app.command()
def erase(
    *,
    conversation: Annotated[
        list[str] | None,
        typer.Option("--conversation", help="A conversation id, exactly (repeatable)."),
    ] = None,
    phone: Annotated[
        list[str] | None,
        typer.Option(
            "--phone",
            help="A phone number (repeatable): every conversation that holds it goes, whole.",
        ),
    ] = None,
    do_apply: Annotated[
        bool, typer.Option("--apply", help="Delete what is found (default: a dry run).")
    ] = False,
    settings: SettingsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find (and with --apply delete) every record, state row, index row, spill blob and dead
    letter of some conversations or phone numbers (a data-subject request)."""
    with _errors():
        transform = TransformSettings.from_env(load_env(settings))
        key = transform.pii.key_bytes
        numbers = [erase_module.NumberQuery.of(number, key) for number in phone or ()]
        with (
            wiring.record_reader(wiring.output_of(transform)) as records,
            wiring.state_eraser(transform) as states,
            wiring.deadletter_store(wiring.output_of(transform)) as letters,
        ):
            found = erase_module.find(records, states, letters, conversation or [], numbers)
            erased = erase_module.apply(found, records, states, letters) if do_apply else None
    report: dict[str, Any] = {
        "applied": do_apply,
        "conversations": found.conversations,
        "found": found.counts(),
        "deleted": erased.deleted if erased else dict.fromkeys(found.counts(), 0),
        "remaining": erased.remaining if erased else None,
        "unreadable": found.unreadable,
    }
    if as_json:
        _print_json(report)
    else:
        title = "erased" if do_apply else "would erase (dry run: --apply deletes)"
        table = Table(title=f"{title}: {len(found.conversations)} conversation(s)")
        for column in ("what", "found", "deleted", "remaining"):
            table.add_column(column, justify="left" if column == "what" else "right")
        for what, count in report["found"].items():
            left = "-" if erased is None else str(erased.remaining[what])
            table.add_row(what.replace("_", " "), str(count), str(report["deleted"][what]), left)
        console.print(table)
        for conversation_id in found.conversations:
            console.print(f"conversation {conversation_id}", markup=False, highlight=False)
        for reason in found.unreadable:
            console.print(f"not searched: {reason}", markup=False, highlight=False, style="yellow")
    if erased is not None and any(erased.remaining.values()):
        err_console.print(
            "[bold red]something is still there:[/] the consumer wrote it again (events of the "
            "conversation still arriving?); run the same command again",
            highlight=False,
        )
        raise typer.Exit(1)


# ---------------------------------------------------------------------- capacity
@app.command()
def capacity(
    *,
    seats: Annotated[
        list[int], typer.Option("--seats", help="Seats at the peak (repeat for one column each).")
    ],
    conversations_per_seat_hour: Annotated[
        float, typer.Option(help="Conversations a seat handles in the busiest hour.")
    ] = 8.0,
    peak_factor: Annotated[
        float, typer.Option(help="The busiest minutes against the busiest hour's mean.")
    ] = 1.3,
    peak_hours_per_month: Annotated[
        float, typer.Option(help="The month's traffic in busiest-hour equivalents (for costs).")
    ] = 250.0,
    micro_events_per_conversation: Annotated[
        float | None, typer.Option(help="Default: the simulator's realistic profile (12.8).")
    ] = None,
    utilisation: Annotated[
        float, typer.Option(help="Share of any limit or instance to plan on using at the peak.")
    ] = 0.7,
    batch: Annotated[
        int, typer.Option(help="Host batch size whose measured costs apply: 100 or 500.")
    ] = 100,
    wait_ms: Annotated[
        list[str] | None,
        typer.Option(
            "--wait-ms",
            help="KIND=MS, the wait of one storage request on Azure (repeatable), KIND one of "
            + ", ".join(capacity_model.REQUEST_KINDS),
        ),
    ] = None,
    cpu_factor: Annotated[
        float, typer.Option(help="Flex CPU seconds per CPU second of the bench machine.")
    ] = 1.0,
    instance_memory_gb: Annotated[float, typer.Option(help="Flex instance memory.")] = 2.0,
    months_of_records: Annotated[float, typer.Option(help="Months of records kept.")] = 12.0,
    operations_per_micro_event: Annotated[
        float | None,
        typer.Option(help="Storage requests per micro-event (default: measured by P5; P2: 0.195)."),
    ] = None,
    as_json: JsonOption = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
    write_doc: Annotated[
        Path | None,
        typer.Option(
            "--write-doc",
            help="Rewrite the generated tables of this document (docs/capacity.md) and exit.",
        ),
    ] = None,
) -> None:
    """What N seats need past one machine: load at the peak, Event Hubs throughput units and
    partitions, Flex instances, storage requests against the account limits, monthly cost."""
    with _errors():
        try:
            if write_doc is not None:
                text = write_doc.read_text(encoding="utf-8")
                write_doc.write_text(
                    capacity_model.fill_blocks(text, capacity_model.doc_blocks()), encoding="utf-8"
                )
                console.print(f"rewrote the generated tables of {write_doc}", highlight=False)
                return
            base = capacity_model.Assumptions(
                seats=1,
                conversations_per_seat_hour=conversations_per_seat_hour,
                peak_factor=peak_factor,
                peak_hours_per_month=peak_hours_per_month,
                micro_events_per_conversation=micro_events_per_conversation,
                utilisation=utilisation,
                batch=batch,
                wait_ms=capacity_model.parse_waits(wait_ms or ()),
                cpu_factor=cpu_factor,
                instance_memory_gb=instance_memory_gb,
                months_of_records=months_of_records,
                operations_per_micro_event=operations_per_micro_event,
            )
            plans = [capacity_model.plan(replace(base, seats=n)) for n in seats]
            limits = capacity_model.seats_at_limits(base)
        except (capacity_model.CapacityError, OSError) as e:
            raise UsageError(str(e)) from e
    if as_json:
        _print_json(
            {
                "assumptions": asdict(base) | {"seats": seats},
                "plans": [asdict(p) | {"total_cost": p.total_cost} for p in plans],
                "seats_at_limits": limits,
            }
        )
        return
    if markdown:
        typer.echo(capacity_model.markdown_table(plans))
        return
    table = Table(title="capacity at the peak (docs/capacity.md)")
    table.add_column("")
    for p in plans:
        table.add_column(f"{p.seats:,} seats", justify="right")
    columns = [capacity_model.plan_rows(p) for p in plans]
    for index, (label, _) in enumerate(columns[0]):
        table.add_row(label, *(c[index][1] for c in columns))
    console.print(table)
    for name, limit in limits.items():
        console.print(f"{name}: reached at {limit:,} seats", highlight=False)


def main() -> None:
    """Console entry point."""
    app()
