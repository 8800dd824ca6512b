"""The offline replay against the obvious script (`bench/naive_replay.py`) on the same input.

Both read the same generated envelope file (`realistic` knobs, envelope format only, which is
all the naive script reads) and write one JSON file per conversation. Measured two ways, best
of `--repeat` runs, at 1x, 2x and 4x the work (cost must grow linearly):

- whole process: wall seconds of `python bench/naive_replay.py IN OUT` against
  `python -m transform replay IN --out OUT` (interpreter start and imports included), as a user
  runs it (its default `--workers`: the cores it may use) and with `--workers 1`;
- in-process: CPU seconds of the naive `main()` against `transform.__main__`'s replay and
  output writing with one worker, in this process (one core against one core).

With `--instructions`, the whole-process runs at 1x are also counted by valgrind's cachegrind
(instructions are repeatable whatever else the machine does; seconds are not).

Both processes run with Python's default bytecode cache (`__pycache__`, written by an untimed
first import): a user's Python keeps it, but this machine sets `PYTHONDONTWRITEBYTECODE=1` for
everything, which made every run of the replay compile its ~60 modules again (0.3 G of its
instructions; the naive script is one file and the standard library, compiled once anyway).

Both write their files to a tmpfs (`/dev/shm`) when there is one: on this machine's disk
creating a file costs ~0.7 ms of system time, which would bury both scripts' work under the
same file-system cost.

    python -m bench.replay_vs_naive [--conversations 5000] [--repeat 3] [--instructions]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import naive_replay
from bench.common import ROOT, generated_input, write_result
from transform.__main__ import DEFAULT_WORKERS, replay_into_folder

PYTHON = sys.executable
SEED = 20261124
PROCESS_ENV = {
    name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"
}
"""The environment of the timed processes: Python's defaults, bytecode cache included."""


def warm_bytecode() -> None:
    """Write the bytecode cache of every module either script imports (untimed)."""
    command = [PYTHON, "-c", "import transform.__main__, bench.naive_replay"]
    subprocess.run(command, check=True, cwd=ROOT, env=PROCESS_ENV)


def envelope_input(conversations: int) -> Path:
    """The `realistic` profile with envelopes only, generated once and cached."""
    folder = generated_input("realistic", conversations, SEED, ["--format-mix", "envelope=1"])
    return folder / "deliveries.jsonl"


def _best(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def naive_command(data: Path, scratch: Path) -> list[str]:
    return [PYTHON, "bench/naive_replay.py", str(data), str(_fresh(scratch / "naive"))]


def replay_command(data: Path, scratch: Path, workers: int = DEFAULT_WORKERS) -> list[str]:
    out = str(_fresh(scratch / "r"))
    return [PYTHON, "-m", "transform", "replay", str(data), "--out", out, f"--workers={workers}"]


def _wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=PROCESS_ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _cpu(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def _compared(naive: float, replay: float) -> dict[str, float]:
    return {
        "naive_s": round(naive, 3),
        "replay_s": round(replay, 3),
        "ratio": round(naive / replay, 3),
    }


def whole_process(data: Path, scratch: Path, repeat: int) -> dict[str, Any]:
    """Best wall seconds of each script as a process of its own: the replay as a user runs it
    (its default worker count) and on one worker."""
    naive = _best(repeat, lambda: _wall(naive_command(data, scratch)))
    replay = _best(repeat, lambda: _wall(replay_command(data, scratch)))
    one = _best(repeat, lambda: _wall(replay_command(data, scratch, workers=1)))
    compared: dict[str, Any] = {"workers": DEFAULT_WORKERS, **_compared(naive, replay)}
    compared |= {"replay_one_worker_s": round(one, 3), "ratio_one_worker": round(naive / one, 3)}
    return compared


def in_process(data: Path, scratch: Path, repeat: int) -> dict[str, float]:
    """Best CPU seconds of each, run in this process (no interpreter start, no imports)."""
    naive = _best(repeat, lambda: _cpu(lambda: naive_replay.main(data, _fresh(scratch / "naive"))))
    replay = _best(
        repeat, lambda: _cpu(lambda: replay_into_folder(data, _fresh(scratch / "r"), io.StringIO()))
    )
    return _compared(naive, replay)


CACHEGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]


def _instructions(command: list[str]) -> int:
    done = subprocess.run(
        CACHEGRIND + command, cwd=ROOT, env=PROCESS_ENV, capture_output=True, text=True, check=True
    )
    line = next(line for line in done.stderr.splitlines() if "I" in line and "refs:" in line)
    return int(line.rsplit(":", 1)[1].replace(",", "").strip())


def instructions(data: Path, scratch: Path) -> dict[str, int]:
    """Instructions of each whole process, counted by cachegrind (the replay on one worker:
    cachegrind counts the process it starts, not its children)."""
    naive = _instructions(naive_command(data, scratch))
    replay = _instructions(replay_command(data, scratch, workers=1))
    return {"naive": naive, "replay": replay, "ratio_x1000": naive * 1000 // replay}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=5000, help="the 1x work")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instructions", action="store_true", help="also count with cachegrind")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (no figures kept)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warm_bytecode()
    base = 30 if args.smoke else args.conversations
    results: dict[str, Any] = {"profile": "realistic, envelopes only", "conversations": base}
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as scratch_dir:
        scratch = Path(scratch_dir)
        for scale in (1,) if args.smoke else (1, 2, 4):
            data = envelope_input(base * scale)
            entry: dict[str, Any] = {
                "lines": sum(1 for _ in data.open("rb")),
                "bytes": data.stat().st_size,
                "whole_process": whole_process(data, scratch, 1 if args.smoke else args.repeat),
                "in_process": in_process(data, scratch, 1 if args.smoke else args.repeat),
            }
            if args.instructions and scale == 1:
                entry["instructions"] = instructions(data, scratch)
            results[f"x{scale}"] = entry
    results["target_ratio"] = 2.0
    if args.smoke:
        sys.stdout.write(f"{results}\n")
    else:
        write_result("replay_vs_naive", results)


if __name__ == "__main__":
    main()
