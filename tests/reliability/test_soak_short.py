"""The soak in short, in CI: `python -m bench.soak` for about a minute, a fault every 6 s.

The long run (30 minutes or more) is in RELIABILITY.md with its figures; this one keeps the
script working and holds the same verdict: 0 lost, 0 double-counted (every record matched
field by field), dead letters equal to the injected malformed payloads, every fault recovered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = [pytest.mark.stack, pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_a_minute_of_chaos_with_every_fault_kind_verifies_exactly(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_RESULTS": str(tmp_path)}
    command = [sys.executable, "-m", "bench.soak", "--minutes", "1", "--rate", "30",
               "--fault-every", "6", "--fault-duration", "2", "--seed", "5"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=900)
    result = orjson.loads((tmp_path / "soak.json").read_bytes())

    assert result["verified"] is True and result["exit_code"] == 0
    records = result["verify"]["records"]
    assert records["matched"] == result["conversations"]
    assert records["mismatched"] == records["missing"] == records["unexpected"] == 0
    letters = result["verify"]["dead_letters"]
    assert letters["matched"] == letters["expected"] == result["dataset"]["malformed"] > 0
    assert letters["missing"] == letters["unexpected"] == 0
    assert set(result["faults_by_kind"]) == {"host", "eventhubs", "azurite"}
    assert result["faults_failed"] == 0
    assert result["send"]["gave_up"] == 0
