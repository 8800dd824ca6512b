"""The app loads in Microsoft's worker runtime, and a binding annotation it refuses fails here.

The worker refuses `list[func.EventHubEvent]` ("invalid non-type annotation") when it indexes the
app, and then runs none of its functions: on Azure, under `func start`, and in the local host.
"""

from __future__ import annotations

import json
import shutil
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
REFUSED = (
    "FunctionLoadError: cannot load the transform function: binding events has invalid "
    "non-type annotation list[azure.functions._eventhub.EventHubEvent]"
)
APP_PACKAGES = ("functions", "ingest", "transform", "schemas", "adapters", "ops")


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


def test_the_built_in_list_annotation_is_refused_with_the_runtimes_message(tmp_path: Path) -> None:
    shutil.copy(ROOT / "function_app.py", tmp_path)
    for package in APP_PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    blueprint = tmp_path / "functions" / "transform.py"
    source = blueprint.read_text(encoding="utf-8")
    assert "events: List[func.EventHubEvent]" in source
    blueprint.write_text(source.replace("events: List[", "events: list["), encoding="utf-8")
    refused = load(tmp_path)
    assert refused.returncode == 1
    assert REFUSED in refused.stderr


def test_pyupgrade_cannot_rewrite_the_binding_annotations() -> None:
    ruff = [sys.executable, "-m", "ruff", "check", "--fix", "--diff", "--select", "UP", "functions"]
    checked = subprocess.run(ruff, cwd=ROOT, capture_output=True, text=True, check=False)
    assert "List[" not in checked.stdout, checked.stdout
