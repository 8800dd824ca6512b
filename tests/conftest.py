"""Stack fixtures: Azurite and the Event Hubs emulator once per session, hosts per test.

    def test_something(local_stack, start_hosts):          # mark it @pytest.mark.stack
        stack = start_hosts(app_dir=ROOT, env={"SOME_SETTING": "x"})
        httpx.get(stack.http_base_url() + "/api/health")
        stack.kill_host(0); stack.start_host(0)             # fault injection

Services run on free loopback ports (so tests run beside a developer's `devstack up`), with
data in a session temp dir. Hosts read local.settings.example.json; the connection settings are
overridden by environment variables pointing at the session's ports. A part that cannot start
fails the test with the tail of its log; nothing is skipped.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devstack.errors import DevstackError
from devstack.stack import EVENTHUBS_CONFIG, Stack, StackPorts

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "tests" / "apps"
ECHO_APP = APPS / "echo"
EXAMPLE_SETTINGS = ROOT / "local.settings.example.json"

# Hubs every session has: the project's own plus one per devstack test scenario, so each
# scenario starts with empty partitions and its own checkpoints.
PROJECT_HUBS = {"genesys-events": 4, "test-events": 2}
TEST_HUBS = {
    "echo-basic": 2,
    "echo-fail": 2,
    "echo-retry": 1,
    "echo-single": 2,
    "echo-shared": 4,
    "echo-kill": 4,
    "echo-batching": 1,
    "ops-lag": 2,  # tests/ops: each scenario its own hub and checkpoints
    "ops-reset": 2,
    "ops-replay": 2,
    "ops-erase": 2,
    "ops-purge": 1,
    "reliability-fuzz": 2,  # tests/reliability: each reads its whole hub back
    "reliability-ids": 2,
    "reliability-auth": 2,
    "js-conformance": 4,  # tests/js: Microsoft's JavaScript SDK against the emulator
}
# A consumer group for tests that read a hub beside a host's own consumer ($Default), so the
# two never steal each other's partitions.
OBSERVER_GROUP = "observer"
# Short load-balancing timings so ownership moves within seconds in tests.
TEST_LOAD_BALANCING_S = 1.0
TEST_OWNERSHIP_EXPIRATION_S = 5.0


def _emulator_config(path: Path) -> Path:
    """The project's emulator config plus the test hubs, written to `path`."""
    project = ROOT / EVENTHUBS_CONFIG
    document: dict[str, Any]
    if project.exists():
        document = json.loads(project.read_text(encoding="utf-8"))
    else:
        document = {
            "UserConfig": {
                "NamespaceConfig": [{"Type": "EventHub", "Name": "emulatorNs1", "Entities": []}],
                "LoggingConfig": {"Type": "File"},
            }
        }
    entities = document["UserConfig"]["NamespaceConfig"][0]["Entities"]
    present = {entity["Name"].lower() for entity in entities}
    for name, partitions in {**PROJECT_HUBS, **TEST_HUBS}.items():
        if name not in present:
            entities.append({"Name": name, "PartitionCount": str(partitions), "ConsumerGroups": []})
    for entity in entities:
        groups = entity.setdefault("ConsumerGroups", [])
        if not any(group["Name"] == OBSERVER_GROUP for group in groups):
            groups.append({"Name": OBSERVER_GROUP})
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


@functools.cache
def project_functions() -> tuple[func.Function, ...]:
    """The project app's functions, indexed once per process.

    azure-functions refuses a second `get_functions()` on the same app object (it keeps the
    names it has seen and reports them as duplicates), so every test shares this one. The
    module is loaded by path: the local host's unit tests index other apps' `function_app.py`
    in this process, which leaves another module under that name in `sys.modules`.
    """
    script = ROOT / "function_app.py"
    spec = importlib.util.spec_from_file_location("project_function_app", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.app.get_functions())


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Azurite and the Event Hubs emulator on free ports, started once per session."""
    state_dir = tmp_path_factory.mktemp("devstack")
    stack = Stack(
        ROOT,
        ports=StackPorts.free(),
        state_dir=state_dir,
        eventhubs_config=_emulator_config(state_dir / "eventhubs.config.json"),
        settings_file=EXAMPLE_SETTINGS,
        load_balancing_interval_s=TEST_LOAD_BALANCING_S,
        ownership_expiration_s=TEST_OWNERSHIP_EXPIRATION_S,
    )
    try:
        stack.start(host=False)
    except DevstackError as e:
        stack.stop()
        pytest.fail(f"the local stack did not start: {e}", pytrace=False)
    yield stack
    stack.stop()


class HostLauncher:
    """Starts hosts for apps on the session stack and stops every one it started."""

    def __init__(self, services: Stack) -> None:
        self.services = services
        self._started: list[Stack] = []

    def __call__(
        self,
        *,
        app_dir: Path = ECHO_APP,
        instances: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> Stack:
        stack = self.services.with_options(
            app_dir=app_dir.resolve(), instances=instances, host_env=dict(env or {})
        )
        self._started.append(stack)
        try:
            for instance in range(instances):
                stack.spawn_host(instance)
            for instance in range(instances):
                stack.wait_host_healthy(instance)
        except DevstackError as e:
            pytest.fail(f"host did not start: {e}", pytrace=False)
        return stack

    def stop_all(self) -> None:
        for stack in self._started:
            instances = range(stack.options.instances)
            with ThreadPoolExecutor(max_workers=max(len(instances), 1)) as pool:
                list(pool.map(stack.stop_host, instances))
        self._started.clear()


HostStarter = Callable[..., Stack]


@pytest.fixture
def start_hosts(local_stack: Stack) -> Iterator[HostStarter]:
    """Start N hosts for an app (`start_hosts(app_dir=…, instances=…, env=…)`), per test."""
    launcher = HostLauncher(local_stack)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def module_hosts(local_stack: Stack) -> Iterator[HostStarter]:
    """Like start_hosts, but the hosts live for the whole test module."""
    launcher = HostLauncher(local_stack)
    yield launcher
    launcher.stop_all()


@pytest.fixture
def project_host(start_hosts: HostStarter) -> Stack:
    """The project's own function_app.py on one host instance."""
    return start_hosts(app_dir=ROOT)
