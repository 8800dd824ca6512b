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


@pytest.mark.parametrize(
    ("module", "printed"),
    [
        ("bench.replay_vs_naive", "'ratio_one_worker': "),  # as run by default and on one worker
        ("bench.fastpath_candidates", "'kept': 'msgspec_convert'"),
    ],
)
def test_the_p1_comparisons_run(module: str, printed: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--smoke"], cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=600,
    )  # fmt: skip
    assert printed in done.stdout


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


@pytest.mark.stack
def test_p5_partition_smoke_and_the_capacity_model_reproduces_it(tmp_path: Path) -> None:
    """A tiny P5 run on its own Azurite; the capacity model, given the run's figures, gives
    the run's modelled throughput back, and the timed requests are the counted ones."""
    from ops.capacity import RoleCost

    result = run_bench("bench.p5_partition", tmp_path, "--conversations", "60",
                       "--partitions", "2", "--batch-sizes", "20,50")  # fmt: skip
    data_set = result["data_set"]
    assert isinstance(data_set, dict)
    assert data_set["events_per_delivery"] >= 1  # one event per conversation per request
    for size in (20, 50):
        run = result[f"batch_{size}"]
        assert isinstance(run, dict)
        micro_events = run["micro_events"]
        assert micro_events == result["partition_micro_events"]
        assert micro_events > 0
        assert run["counts"]["finalized"] > 0  # the timer wrote records
        assert 0 < run["core_cpu_ms_per_micro_event"] < run["consumer"]["cpu_ms_per_micro_event"]
        requests = 0
        for role in ("consumer", "timer"):
            figures = run[role]
            cost = RoleCost.from_bench(figures, micro_events)
            modelled = 1 / cost.seconds_per_micro_event(cost.bench_wait_ms, cpu_factor=1.0)
            assert modelled == pytest.approx(figures["model_micro_events_per_s"], rel=0.01)
            # Wall time holds the CPU and the waits, and whatever else the machine did.
            assert figures["micro_events_per_s"] <= modelled * 1.02
            counted, timed = figures["storage_operations"], figures["requests"]

            def count(kind: str, timed: dict[str, dict[str, float]] = timed) -> float:
                return timed.get(kind, {}).get("count", 0)

            assert count("table_transaction") + count("table_write") == counted["table_writes"]
            assert count("table_read") == counted["table_reads"]
            assert count("table_query") == counted["table_queries"]
            assert count("blob_write") == counted["blob_writes"]
            assert count("blob_read") == counted["blob_reads"]
            assert sum(cost.requests.values()) * micro_events == pytest.approx(counted["total"])
            requests += counted["total"]
        assert run["operations_per_micro_event"] == pytest.approx(requests / micro_events, abs=1e-4)
