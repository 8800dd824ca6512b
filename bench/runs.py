"""Running `python -m simulator run` for the pipeline benchmarks, and sampling the host's memory."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.common import CACHE, ROOT


class HostMemory:
    """Peak and trail of the RSS of a run's local Functions host processes, sampled in a thread.

    Only hosts whose command line names `marker` (the run's folder) count, so hosts of
    anything else running on the machine do not inflate the figure.
    """

    def __init__(self, marker: str, every_s: float = 2.0) -> None:
        self._marker = marker
        self._every_s = every_s
        self._stop = threading.Event()
        self.samples: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> HostMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self._every_s):
            total = 0
            for process in psutil.process_iter(["cmdline", "memory_info"]):
                cmdline = process.info.get("cmdline") or []
                text = " ".join(cmdline)
                if "devstack.host" in text and self._marker in text:
                    total += process.info["memory_info"].rss
            if total:
                self.samples.append((round(time.monotonic() - started, 1), total))

    @property
    def peak_mib(self) -> float:
        """Highest total RSS seen, in MiB."""
        return peak_mib(self.samples)

    def halves_mib(self) -> tuple[float, float]:
        """The peak of the first half of the samples and of the second, in MiB: equal when flat."""
        half = len(self.samples) // 2
        return peak_mib(self.samples[:half]), peak_mib(self.samples[half:])


def peak_mib(samples: list[tuple[float, int]]) -> float:
    """The highest RSS of (seconds, bytes) samples, in MiB."""
    return round(max((rss for _, rss in samples), default=0) / 2**20, 1)


STACK_PARTS = {"host": "devstack.host", "eventhubs": "devstack.eventhubs", "azurite": "azurite"}


def cpu_seconds_by_part() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each local stack part this process started,
    and by this process itself (the load generator)."""
    totals = dict.fromkeys(STACK_PARTS, 0.0)
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            times = child.cpu_times()
        except psutil.Error:  # exited meanwhile
            continue
        for part, marker in STACK_PARTS.items():
            if marker in cmdline:
                totals[part] += times.user + times.system
    own = psutil.Process().cpu_times()
    totals["load_generator"] = own.user + own.system
    return totals


def run_folder(name: str) -> Path:
    """Where `simulator_run(name, …)` keeps its run (the host's files are under it)."""
    return CACHE / "runs" / name


def simulator_run(name: str, arguments: list[str]) -> dict[str, Any]:
    """Run the simulator end to end into out/bench/runs/<name> and return its report."""
    out = run_folder(name)
    if out.exists():  # a run folder is one run: never mix files of two
        shutil.rmtree(out)
    command = [sys.executable, "-m", "simulator", "run", *arguments, "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, check=False)
    report_path = Path(out) / "report.json"
    if not report_path.exists():
        raise SystemExit(f"simulator run {name} wrote no report (exit {completed.returncode})")
    report: dict[str, Any] = orjson.loads(report_path.read_bytes())
    report["exit_code"] = completed.returncode
    return report
