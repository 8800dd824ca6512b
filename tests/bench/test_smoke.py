"""Tiny runs of every benchmark so they do not rot; no timing is asserted (figures are noise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(module: str, tmp_path: Path, *arguments: str) -> dict[str, object]:
    env = {**os.environ, "BENCH_RESULTS": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-m", module, *arguments], cwd=ROOT, env=env, check=True, timeout=600
    )
    (written,) = tmp_path.glob("*.json")
    result: dict[str, object] = orjson.loads(written.read_bytes())
    return result


@pytest.mark.parametrize("module", ["bench.replay_vs_naive", "bench.fastpath_candidates"])
def test_the_p1_comparisons_run(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--smoke"], cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=600,
    )  # fmt: skip
    assert "'ratio'" in done.stdout or "'kept'" in done.stdout


def test_p1_core_and_replay_agree_on_the_work_done() -> None:
    from bench.common import generated_input
    from bench.p1_transform import run_core, run_parse, run_replay

    lines = (generated_input("realistic", 30) / "deliveries.jsonl").read_bytes().splitlines()
    assert run_core(lines) == run_replay(lines) == run_parse(lines) > 0


@pytest.mark.stack
@pytest.mark.e2e
@pytest.mark.parametrize(
    "setup", [(), ("--ingest-only", "--instances", "2")], ids=["app", "ingest-only"]
)
def test_p3_ingest_smoke(tmp_path: Path, setup: tuple[str, ...]) -> None:
    result = run_bench("bench.p3_ingest", tmp_path, "--requests", "60", "--concurrency", "8",
                       "--scales", "1", *setup)  # fmt: skip
    x1 = result["x1"]
    assert isinstance(x1, dict)
    assert x1["accepted"] == 60
    assert set(x1["cpu_ms_per_request"]) == {"host", "eventhubs", "azurite", "load_generator"}
    assert x1["cpu_ms_per_request"]["host"] > 0


@pytest.mark.stack
@pytest.mark.e2e
def test_p2_storage_smoke(tmp_path: Path) -> None:
    result = run_bench("bench.p2_storage", tmp_path, "--conversations", "15", "--rate", "30",
                       "--scales", "1")  # fmt: skip
    x1 = result["x1"]
    assert isinstance(x1, dict)
    assert x1["verified"] is True
    assert isinstance(x1["operations_per_micro_event"], float)


@pytest.mark.stack
@pytest.mark.e2e
def test_p4_end_to_end_smoke(tmp_path: Path) -> None:
    result = run_bench("bench.p4_end_to_end", tmp_path, "--conversations", "20", "--rate", "20")
    assert result["verified"] is True
    assert isinstance(result["host_rss_peak_mib"], float) and result["host_rss_peak_mib"] > 0
