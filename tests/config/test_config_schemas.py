"""host.json, local.settings.example.json and azure.yaml against their official JSON Schemas.

The schemas are kept in `tests/config/schemas/` (SchemaStore's and azd's, copied unchanged, see
SOURCES.md); host.json also meets this project's own rules (`host.project.schema.json`).
Unknown keys, wrong enum values and unbounded timeouts fail here, not at deploy.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from adapters.settings import SettingsError, read_local_settings
from tests.conftest import ROOT

SCHEMAS = Path(__file__).resolve().parent / "schemas"
RAW_GITHUB = "https://raw.githubusercontent.com/Azure/azure-dev/main/"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return loaded


def host_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    return loaded


def errors(document: Any, against: dict[str, Any], registry: Registry | None = None) -> list[str]:
    """Every violation, as `path: message` (empty when the document is valid)."""
    validator_class = jsonschema.validators.validator_for(against)
    validator_class.check_schema(against)
    validator = (
        validator_class(against, registry=registry) if registry else validator_class(against)
    )
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def host_errors(document: dict[str, Any]) -> list[str]:
    return errors(document, schema("host.json.schema.json")) + errors(
        document, schema("host.project.schema.json")
    )


def test_host_json_meets_schemastore_and_the_project_rules() -> None:
    assert host_errors(host_json()) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h: h.update(funtionTimeout="00:05:00"), "misspelt top-level key"),
        (lambda h: h["extensions"]["eventHubs"].update(maxBatchSize=10), "unknown eventHubs key"),
        (
            lambda h: h["extensions"]["eventHubs"]["initialOffsetOptions"].update(type="fromNow"),
            "enum",
        ),
        (lambda h: h.update(functionTimeout="25:00:00"), "timeout beyond a day"),
        (lambda h: h.update(functionTimeout="-1"), "unbounded timeout"),
        (lambda h: h["extensions"]["eventHubs"].update(batchCheckpointFrequency=5), "scale-in"),
        (lambda h: h["extensionBundle"].update(version="[4.0.0, 5.0.0)"), "bundle below 4.27"),
        (lambda h: h["logging"]["logLevel"].update(default="Verbose"), "log level enum"),
    ],
)
def test_host_json_mistakes_are_refused(change: Any, why: str) -> None:
    broken = copy.deepcopy(host_json())
    change(broken)
    assert host_errors(broken), f"not refused: {why}"


def test_the_timer_budget_fits_in_the_function_timeout() -> None:
    hours, minutes, seconds = map(int, host_json()["functionTimeout"].split(":"))
    settings = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))
    budget = float(settings["Values"]["TIMER_MAX_SECONDS"])
    assert budget < hours * 3600 + minutes * 60 + seconds


def local_settings_errors(document: dict[str, Any]) -> list[str]:
    return errors(document, schema("local.settings.json.schema.json")) + errors(
        document, schema("local.settings.project.schema.json")
    )


def test_local_settings_example_meets_its_schema() -> None:
    document = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))
    assert local_settings_errors(document) == []
    assert document["Values"]["FUNCTIONS_WORKER_RUNTIME"] == "python"


@pytest.mark.parametrize(
    "port",
    [1, 7071, 65535, 0, -1, 65536, 7071.0, 7071.5, "7071", "abc", True, False, None, [7071]],
)
def test_local_http_port_schema_and_host_agree(port: Any, tmp_path: Path) -> None:
    """The schemas refuse exactly the Host.LocalHttpPort values the local host refuses."""
    document = {"IsEncrypted": False, "Values": {}, "Host": {"LocalHttpPort": port}}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        port_read = read_local_settings(path).local_http_port
    except SettingsError:
        host_refuses = True
    else:
        host_refuses = False
        assert port_read == port
    assert bool(local_settings_errors(document)) == host_refuses
    assert host_refuses == (type(port) is not int or port not in (1, 7071, 65535))


def azd_registry() -> Registry:
    """The extension schemas azure.yaml's schema refers to, served from the kept copies."""
    resources = []
    for path in sorted((SCHEMAS / "refs" / "azure-dev").rglob("*.json")):
        url = RAW_GITHUB + path.relative_to(SCHEMAS / "refs" / "azure-dev").as_posix()
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((url, Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def test_azure_yaml_meets_the_azd_schema() -> None:
    document = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert errors(document, schema("azure.yaml.schema.json"), azd_registry()) == []
    broken = copy.deepcopy(document)
    broken["services"]["api"]["language"] = 42
    assert errors(broken, schema("azure.yaml.schema.json"), azd_registry())
