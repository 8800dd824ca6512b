"""`python -m transform replay INPUT.jsonl --out DIR [--batch-size N]` (SPEC 9).

The one place in the core that wires adapters: the replay runs on the in-memory twins of the
storage ports and a manual clock (SPEC 9: no Azure at all).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from schemas.timestamps import ms_to_datetime
from transform.media import MediaFilter
from transform.replay import ReplayPorts, replay, write_output
from transform.state import DEFAULT_GRACE_SECONDS, DEFAULT_IDLE_SECONDS, Timing

app = typer.Typer(help="The transform core's command line.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """Transform tools (offline; no Azure)."""


@app.command("replay")
def replay_command(
    input_path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSONL deliveries")
    ],
    out: Annotated[Path, typer.Option("--out", help="output folder")],
    *,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="lines per batch")] = 100,
    grace_seconds: Annotated[
        float, typer.Option(min=0, help="grace period")
    ] = DEFAULT_GRACE_SECONDS,
    idle_seconds: Annotated[float, typer.Option(min=0, help="idle timeout")] = DEFAULT_IDLE_SECONDS,
    media_types: Annotated[
        str,
        typer.Option(
            "--media-types",
            help="keep only conversations of these media types, e.g. voice,chat "
            "(INGEST_MEDIA_TYPES; empty: all)",
        ),
    ] = "",
) -> None:
    """Replay deliveries through the exact consumer logic with in-memory storage."""
    timing = Timing.from_seconds(grace_seconds, idle_seconds)
    try:
        media = MediaFilter.parse(media_types)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--media-types") from e
    records = InMemoryRecordSink()
    dead_letters = InMemoryDeadLetterSink()
    ports = ReplayPorts(InMemoryStateStore(), records, dead_letters, ManualClock(ms_to_datetime(0)))
    with input_path.open("rb") as stream:
        counts = replay(stream, ports, batch_size=batch_size, timing=timing, media=media)
    write_output(out, records.records, dead_letters.letters.values())
    summary = {"records": len(records.records), "dead_letters": len(dead_letters.letters)}
    summary |= counts.as_dict()
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    app()
