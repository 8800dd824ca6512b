"""The deploy package loads in Microsoft's worker runtime with nothing but what a deploy ships.

Built as `func azure functionapp publish` builds it (the project folder minus `.funcignore`), with
`requirements.txt` installed the way Azure's remote build installs it, but from Linux wheels for
Python 3.13 only (`--only-binary :all:`), so a missing wheel fails here and not in Azure's build.
The package is then loaded in a clean interpreter (no site-packages, no project on the path): the
runtime must index all six functions, and neither loading nor a first invocation of each may
import the tests, the simulator, the local stack or the benchmarks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

from devstack.host import rpc
from tests.conftest import ROOT
from tests.functions.test_worker_load import PROJECT_FUNCTIONS

pytestmark = pytest.mark.slow

LINUX_WHEELS = [
    "--only-binary",
    ":all:",
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.13",
    "--implementation",
    "cp",
    "--abi",
    "cp313",
]
SITE_PACKAGES = Path(".python_packages/lib/site-packages")
# What the proxy worker brings on Azure besides the runtime (protobuf), and the host's side of
# the conversation: the driver modules of the local host, outside the package.
DRIVER_FILES = [
    "devstack/__init__.py",
    "devstack/errors.py",
    "devstack/host/__init__.py",
    "devstack/host/check.py",
    "devstack/host/trigger_data.py",
    "devstack/host/worker.py",
    "devstack/host/rpc/__init__.py",
    "devstack/host/rpc/function_rpc.proto",
    "devstack/host/rpc/function_rpc_pb2.py",
    "devstack/host/rpc/function_rpc_pb2.sha256",
]
NOT_IN_THE_APP = ["tests", "simulator", "devstack", "bench", "ops"]


def build_package(destination: Path) -> list[str]:
    """Copy the project minus `.funcignore` (gitignore syntax, as Core Tools reads it)."""
    ignore = pathspec.GitIgnoreSpec.from_lines(
        (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    )
    copied: list[str] = []
    for folder, directories, files in os.walk(ROOT):
        relative = Path(folder).relative_to(ROOT)
        directories[:] = [
            d for d in directories if not ignore.match_file(f"{(relative / d).as_posix()}/")
        ]
        for name in files:
            path = (relative / name).as_posix()
            if ignore.match_file(path):
                continue
            target = destination / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, target)
            copied.append(path)
    return copied


def pip_install(target: Path, *requirements: str) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--target", str(target), *LINUX_WHEELS, *requirements]
    installed = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert installed.returncode == 0, f"pip could not install {requirements}:\n{installed.stderr}"


def pinned(name: str) -> str:
    """`name==version` as constraints.txt pins it (the version the project runs with)."""
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.lower().startswith(f"{name.lower()}=="):
            return line.strip()
    raise AssertionError(f"constraints.txt pins no {name}")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deploy")
    app = root / "wwwroot"
    build_package(app)
    pip_install(app / SITE_PACKAGES, "-r", str(app / "requirements.txt"))
    return app


def test_the_package_holds_the_app_and_nothing_of_the_harness(package: Path) -> None:
    top = {p.name for p in package.iterdir()}
    assert {"function_app.py", "host.json", "requirements.txt"} <= top
    assert {"functions", "ingest", "transform", "schemas", "adapters"} <= top
    assert not top & {"tests", "simulator", "devstack", "bench", "ops", "infra", "docs", ".venv"}
    assert not list(package.glob("*.md")) and not (package / "local.settings.json").exists()


def test_the_runtime_loads_and_invokes_the_package_in_a_clean_interpreter(
    package: Path, tmp_path: Path
) -> None:
    proxy = tmp_path / "proxy"
    pip_install(proxy, pinned("protobuf"))
    rpc.load()  # the compiled messages are generated on first use, not committed
    for name in DRIVER_FILES:
        (proxy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, proxy / name)
    paths = [str(package), str(package / SITE_PACKAGES), str(proxy)]
    bootstrap = (
        "import sys, runpy\n"
        f"sys.path[:0] = {paths!r}\n"
        "sys.argv = ['check', *sys.argv[1:]]\n"
        "runpy.run_module('devstack.host.check', run_name='__main__')\n"
    )
    command = [sys.executable, "-I", "-S", "-c", bootstrap, "--app-dir", str(package)]
    command += ["--invoke-all", "--forbid", *NOT_IN_THE_APP]
    loaded = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert loaded.returncode == 0, f"stdout:\n{loaded.stdout}\nstderr:\n{loaded.stderr}"
    report = json.loads(loaded.stdout)
    assert {f["name"] for f in report["functions"]} == set(PROJECT_FUNCTIONS)
    assert set(report["invocations"]) == set(PROJECT_FUNCTIONS)
    assert "timed out" not in report["invocations"].values()
    assert report["invocations"]["health"] == "ok"
    assert report["forbidden_imports"] == []
