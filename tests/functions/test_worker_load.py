"""The app loads in Microsoft's worker runtime, and its binding annotations stay `typing.List`.

The worker refuses `list[func.EventHubEvent]` ("invalid non-type annotation") when it indexes the
app, and then runs none of its functions: on Azure, under `func start`, and in the local host
(tests/devstack/test_host_units.py shows the refusal; here the app must load and keep `List[`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PROJECT_FUNCTIONS = {
    "ingest_events": "httpTrigger",
    "health": "httpTrigger",
    "transform": "eventHubTrigger",
    "transform_timer": "timerTrigger",
    "transform_metrics": "httpTrigger",
    "telemetry_probe": "timerTrigger",
}


def load(app_dir: Path) -> subprocess.CompletedProcess[str]:
    """`python -m devstack.host.check` in a process of its own (the runtime is process-global)."""
    command = [sys.executable, "-m", "devstack.host.check", "--app-dir", str(app_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_runtime_loads_all_six_functions() -> None:
    loaded = load(ROOT)
    assert loaded.returncode == 0, loaded.stderr
    functions = json.loads(loaded.stdout)["functions"]
    triggers = {
        f["name"]: next(b["type"] for b in f["bindings"] if b["type"].endswith("Trigger"))
        for f in functions
    }
    assert triggers == PROJECT_FUNCTIONS


def test_pyupgrade_cannot_rewrite_the_binding_annotations() -> None:
    # Not vacuous: the batch annotation pyupgrade would rewrite is there to be rewritten.
    transform = (ROOT / "functions" / "transform.py").read_text(encoding="utf-8")
    assert "events: List[func.EventHubEvent]" in transform
    ruff = [sys.executable, "-m", "ruff", "check", "--fix", "--diff", "--select", "UP", "functions"]
    checked = subprocess.run(ruff, cwd=ROOT, capture_output=True, text=True, check=False)
    assert "List[" not in checked.stdout, checked.stdout
