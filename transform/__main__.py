"""`python -m transform replay INPUT.jsonl --out DIR [--batch-size N] [--workers N]` (SPEC 9).

The one place in the core that wires adapters: the replay runs on the in-memory twins of the
storage ports and a manual clock (SPEC 9: no Azure at all), and reads `RECORD_PII` /
`RECORD_PII_KEY` through `adapters.settings` like the function app does: from the environment,
or from `--record-pii` and `--record-pii-key-file` (a file, so the key never sits on a command
line or in shell history).

With more than one worker the conversations are split into disjoint shares (`transform.replay.
Shard`), one process each: every worker reads the whole input and writes its own records, the
parent writes the dead letters and the summary. The output is the same whatever the count.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from adapters.settings import PiiSettings, SettingsError, usable_cores
from schemas.record import DeadLetter
from schemas.timestamps import ms_to_datetime
from transform.media import ALL_MEDIA, MediaFilter
from transform.pii import PiiPolicy, RecordPii
from transform.replay import (
    ReplayPorts,
    Shard,
    prepare_output,
    replay,
    write_dead_letters,
    write_records,
)
from transform.service import Counts
from transform.state import DEFAULT_GRACE_SECONDS, DEFAULT_IDLE_SECONDS, Timing

app = typer.Typer(help="The transform core's command line.", no_args_is_help=True)

REPLAY_CACHE = 1_000_000
"""Decoded states the replay's store keeps: all of them, short of a million (it holds every
state in memory anyway; a cache miss would decode)."""

DEFAULT_WORKERS = min(8, usable_cores())

YOUNG_GENERATION = 20_000
"""Allocations between young collections while replaying (CPython's default is 2,000)."""


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
    record_pii: Annotated[
        RecordPii | None,
        typer.Option(
            "--record-pii",
            case_sensitive=False,
            help="phone numbers kept, hashed (keyed HMAC-SHA-256) or dropped; "
            "default: $RECORD_PII, else keep",
            show_default=False,
        ),
    ] = None,
    record_pii_key_file: Annotated[
        Path | None,
        typer.Option(
            "--record-pii-key-file",
            dir_okay=False,
            help="a file holding the HMAC key of --record-pii hash; default: $RECORD_PII_KEY",
        ),
    ] = None,
    media_types: Annotated[
        str,
        typer.Option(
            "--media-types",
            help="keep only conversations of these media types, e.g. voice,chat "
            "(INGEST_MEDIA_TYPES; empty: all)",
        ),
    ] = "",
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="processes, each applying a share of the conversations (same output for any "
            "count); default: the cores this process may use, at most 8",
        ),
    ] = DEFAULT_WORKERS,
) -> None:
    """Replay deliveries through the exact consumer logic with in-memory storage."""
    timing = Timing.from_seconds(grace_seconds, idle_seconds)
    try:
        pii = PiiSettings.from_env(
            mode=None if record_pii is None else record_pii.value, key_file=record_pii_key_file
        )
    except SettingsError as e:
        raise typer.BadParameter(str(e), param_hint="--record-pii") from e
    try:
        media = MediaFilter.parse(media_types)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--media-types") from e
    replay_into_folder(
        input_path,
        out,
        sys.stdout,
        batch_size=batch_size,
        timing=timing,
        pii=pii.policy,
        media=media,
        workers=workers,
    )


@dataclass(frozen=True, slots=True)
class _Job:
    """What one replay worker is given (picklable: it may cross to another process)."""

    input_path: Path
    out: Path
    batch_size: int
    timing: Timing | None
    pii: PiiPolicy | None
    media: MediaFilter
    shard: Shard | None


@dataclass(frozen=True, slots=True)
class _Share:
    """What one replay worker gives back; its records are already in the output folder."""

    records: int
    dead_letters: list[DeadLetter]
    counts: Counts


@contextmanager
def _few_collections() -> Iterator[None]:
    """The cyclic collector walks less while replaying; restored after.

    A replay keeps every conversation's decoded state alive to the end and makes almost no
    reference cycles, so each collection walks a growing heap to free next to nothing: ~10 % of
    a 5,000-conversation replay. What was imported is frozen out of the walks and the young
    generation is ten times CPython's; garbage is still freed by reference counting at once.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _replay_share(job: _Job) -> _Share:
    """Replay `job.shard`'s conversations on the in-memory twins and write their records."""
    with _few_collections():
        return _replay_in_memory(job)


def _replay_in_memory(job: _Job) -> _Share:
    records = InMemoryRecordSink()
    dead_letters = InMemoryDeadLetterSink()
    store = InMemoryStateStore(cache_size=REPLAY_CACHE)
    ports = ReplayPorts(store, records, dead_letters, ManualClock(ms_to_datetime(0)))
    with job.input_path.open("rb") as stream:
        counts = replay(
            stream,
            ports,
            batch_size=job.batch_size,
            timing=job.timing,
            pii=job.pii,
            media=job.media,
            shard=job.shard,
        )
    write_records(job.out, records.records)
    return _Share(len(records.records), list(dead_letters.letters.values()), counts)


def replay_into_folder(
    input_path: Path,
    out: Path,
    summary_to: TextIO,
    *,
    batch_size: int = 100,
    timing: Timing | None = None,
    pii: PiiPolicy | None = None,
    media: MediaFilter = ALL_MEDIA,
    workers: int = 1,
) -> None:
    """Replay a file on the in-memory twins, write the output folder and a JSON summary."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    prepare_output(out)
    shards = [None] if workers == 1 else [Shard(index, workers) for index in range(workers)]
    jobs = [_Job(input_path, out, batch_size, timing, pii, media, shard) for shard in shards]
    if workers == 1:
        shares = [_replay_share(jobs[0])]
    else:
        # fork shares the imports (a spawned worker would import everything again), but is
        # only safe in a process with no other thread: the command line has none.
        import multiprocessing  # here: one worker skips its ~10 ms of imports

        method = "fork" if threading.active_count() == 1 else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            shares = pool.map(_replay_share, jobs, chunksize=1)
    counts = Counts()
    for share in shares:
        counts.add(share.counts)
    letters = [letter for share in shares for letter in share.dead_letters]
    write_dead_letters(out, letters)
    records = sum(share.records for share in shares)
    # `dead_letters`: the letters written, as the consumer's metric counts them (kept second).
    summary = {"records": records, "dead_letters": counts.dead_letters} | counts.as_dict()
    summary_to.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    app()
