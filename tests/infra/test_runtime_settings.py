"""Every setting the worker runtime reports for the app is set in Azure and locally.

The bindings come from Microsoft's worker runtime itself (`python -m devstack.host.check`, the
metadata Azure's host gets), loaded with the settings of the place as environment variables, as
the host does at indexing: the local settings, or the app settings of the templates evaluated as
deployed (`tests/infra/deploy.py` on pycep, a real Bicep parser) for every combination of their
switches.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.infra.deploy import REQUIRED_ARGUMENTS, Deployment, deploy

LOCAL = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
# Flex Consumption refuses these app settings (the platform owns them).
FLEX_FORBIDDEN = re.compile(
    r"^(FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_CONTENT\w*|"
    r"SCM_DO_BUILD_DURING_DEPLOYMENT|ENABLE_ORYX_BUILD)$"
)
# An identity-based connection is any `<prefix>__<property>`; a connection string is `<prefix>`.
HOST_STORAGE = "AzureWebJobsStorage"
SCENARIOS = list(itertools.product((True, False), ("", "a-secret"), ("keep", "hash", "drop")))


@cache
def runtime_bindings(settings: frozenset[str] = frozenset(LOCAL)) -> list[dict[str, Any]]:
    """Every binding of every function, as the worker runtime reports them with `settings` set."""
    values = {name: str(LOCAL.get(name, "set")) for name in settings}
    environment = {k: v for k, v in os.environ.items() if k not in LOCAL} | values
    command = [sys.executable, "-m", "devstack.host.check", "--app-dir", str(ROOT)]
    loaded = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    functions = json.loads(loaded.stdout)["functions"]
    return [binding for function in functions for binding in function["bindings"]]


def setting_references(settings: frozenset[str] = frozenset(LOCAL)) -> set[str]:
    """The `%NAME%` settings the bindings name."""
    return {
        name
        for binding in runtime_bindings(settings)
        for value in binding.values()
        for name in re.findall(r"%(\w+)%", str(value))
    }


def connection_prefixes() -> set[str]:
    """The bindings' connections, plus the host's own storage when a trigger needs it."""
    prefixes = {str(b["connection"]) for b in runtime_bindings() if b.get("connection")}
    if any(b["type"] in {"eventHubTrigger", "timerTrigger"} for b in runtime_bindings()):
        prefixes.add(HOST_STORAGE)  # checkpoints, ownership and timer locks
    return prefixes


def provides(settings: set[str], prefix: str) -> bool:
    return prefix in settings or any(name.startswith(f"{prefix}__") for name in settings)


@cache
def deployed(vnet: bool, secret: str, pii: str) -> Deployment:
    chosen = {"vnetEnabled": vnet, "webhookSecret": secret, "recordPii": pii}
    return deploy("main.bicep", {**REQUIRED_ARGUMENTS, **chosen})


def deployed_settings(deployment: Deployment) -> set[str]:
    """Every app setting name of every function app the deployment creates."""
    names: set[str] = set()
    for _, resource in deployment.walk():
        if (
            resource.type == "Microsoft.Web/sites/config"
            and resource.body.get("name") == "appsettings"
        ):
            names |= set(resource.properties)
        if resource.type == "Microsoft.Web/sites":
            for entry in resource.properties.get("siteConfig", {}).get("appSettings", []):
                names.add(str(entry["name"]))
    return names


def test_the_runtime_reports_the_settings_we_expect() -> None:
    names = {
        "EVENTHUB_NAME",
        "EVENTHUB_CONSUMER_GROUP",
        "TIMER_SCHEDULE",
        "TELEMETRY_PROBE_SCHEDULE",
    }
    assert setting_references() == names
    # A schedule setting that is not set leaves the literal default in the binding.
    assert setting_references(frozenset(LOCAL) - {"TELEMETRY_PROBE_SCHEDULE"}) == names - {
        "TELEMETRY_PROBE_SCHEDULE"
    }
    assert connection_prefixes() == {"EventHubConnection", HOST_STORAGE}


@pytest.mark.parametrize(("vnet", "secret", "pii"), SCENARIOS)
def test_azure_sets_every_setting_the_runtime_reports(vnet: bool, secret: str, pii: str) -> None:
    settings = deployed_settings(deployed(vnet, secret, pii))
    assert settings, "no app settings found in the templates"
    assert setting_references(frozenset(settings)) <= settings
    missing = [p for p in connection_prefixes() if not provides(settings, p)]
    assert not missing, f"connections without settings in infra/: {missing}"
    forbidden = sorted(name for name in settings if FLEX_FORBIDDEN.match(name))
    assert not forbidden, f"Flex Consumption refuses these app settings: {forbidden}"


def test_local_settings_set_every_setting_the_runtime_reports() -> None:
    local = set(LOCAL)
    assert setting_references() <= local
    assert all(provides(local, prefix) for prefix in connection_prefixes())


def test_azure_runs_python_3_13_on_flex_consumption() -> None:
    apps = [r for _, r in deployed(True, "", "keep").walk() if r.type == "Microsoft.Web/sites"]
    assert [app.properties["functionAppConfig"]["runtime"] for app in apps] == [
        {"name": "python", "version": "3.13"}
    ]
