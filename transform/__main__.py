"""`python -m transform replay INPUT.jsonl --out DIR [--batch-size N]` (SPEC 9)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from transform.replay import replay_file
from transform.state import Timing

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
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="lines per batch")] = 100,
    grace_seconds: Annotated[float, typer.Option(min=0, help="grace period")] = 60.0,
    idle_seconds: Annotated[float, typer.Option(min=0, help="idle timeout")] = 4 * 3600.0,
) -> None:
    """Replay deliveries through the exact consumer logic with in-memory storage."""
    timing = Timing(grace_ms=round(grace_seconds * 1000), idle_ms=round(idle_seconds * 1000))
    result = replay_file(input_path, out, batch_size=batch_size, timing=timing)
    summary = {"records": result.records, "dead_letters": result.dead_letters}
    summary |= result.counts.as_dict()
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    app()
