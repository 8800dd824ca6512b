"""The `simulator` command line: `generate`, `verify`, `profiles`; `send`, `run`, `replay`.

Every option can also come from an environment variable named `SIM_<OPTION>` (shown in
`--help`). Exit codes: 0 success (for `verify` and `run`: everything matches), 1 the
pipeline's output differs from the truth, 2 bad usage or unusable input, 3 output not
writable, 4 internal error, 5 the pipeline failed (unreachable, deliveries given up, the local
stack did not start or did not drain).

The pipeline commands live in `simulator.cli_pipeline` and are registered here.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from adapters.settings import OutputSettings, app_environment
from simulator import cli_pipeline
from simulator.cli_common import Profile, errors
from simulator.errors import ExitCode
from simulator.generate import profiles
from simulator.generate.dataset import DELIVERIES_FILE, write
from simulator.generate.dataset import generate as generate_dataset
from simulator.generate.model import FORMATS
from simulator.report import (
    RichProgress,
    generate_summary,
    profiles_table,
    progress_bar,
    show_verify,
    write_json,
)
from simulator.send.sendlog import SEND_LOG_FILE, allowances, read_log
from simulator.timeutil import DEFAULT_START
from simulator.verify.blob_source import BlobRecordSource
from simulator.verify.expected import load_expected
from simulator.verify.sources import OfflineReplaySource
from simulator.verify.verdict import Allowances
from simulator.verify.verdict import verify as verify_dataset
from transform.state import DEFAULT_IDLE_SECONDS

app = typer.Typer(
    name="simulator",
    help="Generate Genesys conversation traffic with ground truth, and verify the pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _rate(name: str, help_text: str) -> Any:
    return typer.Option(
        f"--{name}",
        envvar=f"SIM_{name.upper().replace('-', '_')}",
        min=0.0,
        max=1.0,
        help=f"{help_text} (0-1; default from the profile)",
        show_default=False,
    )


@app.command()
def generate(
    *,
    conversations: Annotated[
        int,
        typer.Option(
            "--conversations",
            "-n",
            envvar="SIM_CONVERSATIONS",
            min=1,
            help="How many conversations.",
        ),
    ] = 100,
    seed: Annotated[int, typer.Option(envvar="SIM_SEED", help="Same seed, same bytes.")] = 1,
    profile: Annotated[
        Profile, typer.Option(envvar="SIM_PROFILE", help="Preset knobs (see `profiles`).")
    ] = Profile.realistic,
    out: Annotated[
        Path | None,
        typer.Option(envvar="SIM_OUT", help="Output folder (default: runs/<profile>-<seed>)."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            envvar="SIM_START",
            help=f"First conversation start, ISO-8601 (default: {DEFAULT_START}).",
        ),
    ] = None,
    arrivals_per_minute: Annotated[
        float | None,
        typer.Option(
            envvar="SIM_ARRIVALS_PER_MINUTE",
            min=0.001,
            help="Mean new conversations per minute (default 30).",
        ),
    ] = None,
    media_mix: Annotated[
        str | None,
        typer.Option(
            envvar="SIM_MEDIA_MIX",
            help="Weights, e.g. voice=6,chat=2,email=1 (other names are new media types).",
        ),
    ] = None,
    format_mix: Annotated[
        str | None,
        typer.Option(
            envvar="SIM_FORMAT_MIX", help="Weights of envelope, eventbridge, notification."
        ),
    ] = None,
    duplicate_rate: Annotated[float | None, _rate("duplicate-rate", "Re-sent payloads.")] = None,
    reorder_rate: Annotated[
        float | None, _rate("reorder-rate", "Payloads delayed within the reorder window.")
    ] = None,
    reorder_window: Annotated[
        float | None,
        typer.Option(
            envvar="SIM_REORDER_WINDOW",
            min=0.001,
            help="Longest reordering delay in seconds (keep it below the grace).",
        ),
    ] = None,
    shuffle_rate: Annotated[
        float | None, _rate("shuffle-rate", "Envelopes whose details are shuffled.")
    ] = None,
    late_rate: Annotated[
        float | None,
        _rate("late-rate", "Ended conversations with a payload held back past end + grace."),
    ] = None,
    late_wrapup_rate: Annotated[
        float | None, _rate("late-wrapup-rate", "Slow wrap-ups (70 s to 10 min).")
    ] = None,
    wrapup_timeout_rate: Annotated[
        float | None, _rate("wrapup-timeout-rate", "Wrap-ups that time out (ININ-WRAP-UP-TIMEOUT).")
    ] = None,
    drift_rate: Annotated[
        float | None, _rate("drift-rate", "Payloads and conversations with schema drift.")
    ] = None,
    drift_kinds: Annotated[
        str | None,
        typer.Option(
            envvar="SIM_DRIFT_KINDS",
            help="Comma list, all or none: " + ", ".join(profiles.DRIFT_KINDS),
        ),
    ] = None,
    malformed_rate: Annotated[
        float | None, _rate("malformed-rate", "Malformed payloads per payload.")
    ] = None,
    malformed_kinds: Annotated[
        str | None,
        typer.Option(
            envvar="SIM_MALFORMED_KINDS",
            help="Comma list, all or none: " + ", ".join(profiles.MALFORMED_KINDS),
        ),
    ] = None,
    array_rate: Annotated[
        float | None, _rate("array-rate", "Deliveries batching payloads in a JSON array.")
    ] = None,
    envelope_split: Annotated[
        float | None, _rate("envelope-split", "Conversations split over several envelopes.")
    ] = None,
    never_end_rate: Annotated[
        float | None, _rate("never-end-rate", "Conversations that never end.")
    ] = None,
    weird_id_rate: Annotated[
        float | None,
        _rate(
            "weird-id-rate", "Conversation ids with / \\ # ? %, control or non-ASCII characters."
        ),
    ] = None,
    hold_rate: Annotated[float | None, _rate("hold-rate", "Calls with holds.")] = None,
    transfer_rate: Annotated[
        float | None, _rate("transfer-rate", "Transferred conversations.")
    ] = None,
    grace_seconds: Annotated[
        float | None,
        typer.Option(
            envvar="SIM_GRACE_SECONDS",
            min=0.001,
            help="The pipeline's grace period, to place late events (default 60).",
        ),
    ] = None,
    media_types: Annotated[
        str | None,
        typer.Option(
            envvar="SIM_MEDIA_TYPES",
            help="The pipeline's INGEST_MEDIA_TYPES the truth assumes, e.g. voice,chat "
            "(all: every type; default: the profile's).",
        ),
    ] = None,
    media_less_attributes: Annotated[
        bool | None,
        typer.Option(
            "--media-less-attributes/--attributes-with-media",
            envvar="SIM_MEDIA_LESS_ATTRIBUTES",
            help="Genesys `attributes` events without mediaType, as Genesys sends them.",
            show_default=False,
        ),
    ] = None,
    foreign_topic_rate: Annotated[
        float | None,
        _rate("foreign-topic-rate", "Conversations with an event of a non-detail topic."),
    ] = None,
    heartbeat_rate: Annotated[
        float | None,
        _rate("heartbeat-rate", "Conversations near which a relay forwards a heartbeat."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", envvar="SIM_QUIET", help="No progress bars.")
    ] = False,
) -> None:
    """Generate deliveries.jsonl, truth.jsonl and manifest.json."""
    err = Console(stderr=True)
    with errors(err):
        overrides: dict[str, Any] = {
            "start": start,
            "arrivals_per_minute": arrivals_per_minute,
            "duplicate_rate": duplicate_rate,
            "reorder_rate": reorder_rate,
            "reorder_window_seconds": reorder_window,
            "shuffle_rate": shuffle_rate,
            "late_rate": late_rate,
            "late_wrapup_rate": late_wrapup_rate,
            "wrapup_timeout_rate": wrapup_timeout_rate,
            "drift_rate": drift_rate,
            "malformed_rate": malformed_rate,
            "array_rate": array_rate,
            "envelope_split": envelope_split,
            "never_end_rate": never_end_rate,
            "weird_id_rate": weird_id_rate,
            "hold_rate": hold_rate,
            "transfer_rate": transfer_rate,
            "grace_seconds": grace_seconds,
            "media_less_attributes": media_less_attributes,
            "foreign_topic_rate": foreign_topic_rate,
            "heartbeat_rate": heartbeat_rate,
        }
        if media_types is not None:
            overrides["media_types"] = profiles.parse_media_types(media_types)
        if media_mix is not None:
            overrides["media_mix"] = profiles.parse_mix(media_mix, (), "media mix")
        if format_mix is not None:
            overrides["format_mix"] = profiles.parse_mix(format_mix, FORMATS, "format mix")
        if drift_kinds is not None:
            overrides["drift_kinds"] = profiles.parse_kinds(
                drift_kinds, profiles.DRIFT_KINDS, "drift kind(s)"
            )
        if malformed_kinds is not None:
            overrides["malformed_kinds"] = profiles.parse_kinds(
                malformed_kinds, profiles.MALFORMED_KINDS, "malformed kind(s)"
            )
        knobs = profiles.resolve(profile.value, overrides)
        folder = out or Path("runs") / f"{profile.value}-{seed}"
        began = time.perf_counter()  # for the speed shown, never for the data
        with progress_bar(err, quiet=quiet) as bar:
            dataset = generate_dataset(
                conversations=conversations,
                seed=seed,
                profile=profile.value,
                knobs=knobs,
                progress=RichProgress(bar),
            )
            paths = write(dataset, folder)
        seconds = time.perf_counter() - began
        Console().print(generate_summary(dataset.manifest, paths, seconds))


@app.command()
def verify(
    *,
    folder: Annotated[
        Path,
        typer.Argument(envvar="SIM_OUT", help="The folder `generate` wrote (truth, manifest)."),
    ],
    offline: Annotated[
        Path | None,
        typer.Option(
            "--offline",
            envvar="SIM_OFFLINE",
            metavar="REPLAY_DIR",
            help="Read records and dead letters from `python -m transform replay --out "
            "REPLAY_DIR` instead of Blob Storage.",
        ),
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json", envvar="SIM_JSON", metavar="FILE", help="Also write the full report as JSON."
        ),
    ] = None,
    idle_seconds: Annotated[
        float,
        typer.Option(
            envvar="SIM_IDLE_SECONDS",
            min=0.001,
            help="The pipeline's idle timeout, for the timing consistency checks.",
        ),
    ] = float(DEFAULT_IDLE_SECONDS),
    max_diffs: Annotated[
        int, typer.Option(envvar="SIM_MAX_DIFFS", min=1, help="Rows shown per problem table.")
    ] = 20,
    settings: Annotated[
        Path | None,
        typer.Option(
            envvar="SIM_SETTINGS",
            metavar="FILE",
            help="App settings for the Blob source (default: ./local.settings.json; the "
            "environment wins over it; /dev/null: the environment only).",
        ),
    ] = None,
    send_log: Annotated[
        Path | None,
        typer.Option(
            envvar="SIM_SEND_LOG",
            metavar="FILE",
            help="The sender's log, for the duplicates re-sent deliveries add "
            "(default: FOLDER/send.jsonl when it exists).",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", envvar="SIM_QUIET", help="No progress bars.")
    ] = False,
) -> None:
    """Compare the pipeline's records and dead letters with the truth; exit 0 only if all match.

    Records and dead letters come from an offline replay folder (`--offline`), or from Blob
    Storage: `StateStorage`, `RECORDS_CONTAINER` and `DEADLETTER_CONTAINER` from the
    environment or `--settings` (local.settings.json). A send log (`DIR/send.jsonl` unless
    `--send-log` says otherwise) lets re-sent deliveries account for extra duplicates.
    """
    err = Console(stderr=True)
    with errors(err):
        expected = load_expected(folder)
        log = send_log or folder / SEND_LOG_FILE
        allow = Allowances()
        if offline is None and log.exists():
            allow = allowances(folder / DELIVERIES_FILE, read_log(log))
        source: OfflineReplaySource | BlobRecordSource
        with contextlib.ExitStack() as opened:  # a Blob source closes its clients at the end
            if offline is not None:
                source = OfflineReplaySource(offline)
            else:
                target = OutputSettings.from_env(app_environment(settings))
                source = opened.enter_context(BlobRecordSource(target))
            with progress_bar(err, quiet=quiet) as bar:
                task = bar.add_task("comparing records", total=source.count())
                report = verify_dataset(
                    expected,
                    source,
                    idle_seconds=idle_seconds,
                    progress=lambda n: bar.advance(task, n),
                    allowances=allow,
                )
        out = Console()
        show_verify(out, report, max_diffs)
        if json_out is not None:
            write_json(json_out, report.as_json())
        if not report.ok:
            raise typer.Exit(int(ExitCode.MISMATCH))


@app.command("profiles")
def list_profiles() -> None:
    """List the profiles and the knobs each one sets."""
    Console().print(profiles_table())


app.command()(cli_pipeline.send)
app.command()(cli_pipeline.run)
app.command()(cli_pipeline.replay)


def main() -> None:
    """Console-script entry point."""
    app()
