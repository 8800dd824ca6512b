"""Shared plumbing for the benchmarks: fixed inputs, machine facts, and JSON output."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "out" / "bench"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def generated_input(
    profile: str, conversations: int, seed: int = 20261124, knobs: list[str] | None = None
) -> Path:
    """A simulator data set, generated once and cached (same seed, same bytes)."""
    suffix = "".join(f"-{knob.strip('-').replace('=', '')}" for knob in knobs or [])
    folder = CACHE / f"{profile}-{conversations}-{seed}{suffix}"
    deliveries = folder / "deliveries.jsonl"
    if not deliveries.exists():
        command = [
            sys.executable, "-m", "simulator", "generate",
            "--conversations", str(conversations), "--seed", str(seed),
            "--profile", profile, "--out", str(folder), *(knobs or []),
        ]  # fmt: skip
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return folder


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Print the figures and keep them as JSON under out/bench/."""
    folder = Path(os.environ.get("BENCH_RESULTS", CACHE))  # smoke runs write elsewhere
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    document = {"benchmark": name, "machine": machine(), **result}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return path
