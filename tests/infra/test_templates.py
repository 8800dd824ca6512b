"""The Bicep templates and azure.yaml against the settings the code reads.

Every connection the app opens is configured identity-based and parses with the app's own
settings code; no value is a key, a SAS or a connection string with a secret; the identity has
exactly the roles the code and the Functions runtime need; the alerts watch what telemetry emits.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from adapters.entity import SPILL_CONTAINER
from adapters.settings import HubSettings, IngestSettings, TransformSettings
from functions import telemetry
from tests.infra import bicep
from tests.infra.deploy import INFRA, ROOT, deploy

MAIN = bicep.read("main.bicep")
APP = bicep.read("modules/functionapp.bicep")
SETTINGS = bicep.entries(bicep.variable(APP, "appSettings"))
MAIN_PARAMS = bicep.params(MAIN)
REQUIRED_ARGUMENTS = {
    "environmentName": "dev",
    "location": "swedencentral",
    "recordPiiKey": "k" * 64,
}
DEFAULT_DEPLOYMENT = deploy("main.bicep", REQUIRED_ARGUMENTS)

# What the deployment puts where the templates have expressions.
_ENDPOINTS = {
    "blob": "https://stdataexample.blob.core.windows.net/",
    "queue": "https://sthostexample.queue.core.windows.net/",
    "table": "https://stdataexample.table.core.windows.net/",
}
CLIENT_ID = "00000000-0000-0000-0000-0000000000c1"


def _value(name: str, expression: str) -> str:
    """A realistic value for one app-setting expression."""
    literal = re.fullmatch(r"'([^']*)'", expression)
    if literal:
        return literal[1].replace("${identityClientId}", CLIENT_ID)
    for kind, url in _ENDPOINTS.items():
        if kind in expression.lower():
            return url
    if expression == "identityClientId":
        return CLIENT_ID
    if expression == "eventHubsNamespace":
        return "evhns-example.servicebus.windows.net"
    if "ConnectionString" in expression:
        return "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    param = re.fullmatch(r"(?:string\()?(\w+)\)?", expression)
    if param and param[1] in MAIN_PARAMS and MAIN_PARAMS[param[1]] is not None:
        return str(MAIN_PARAMS[param[1]]).strip("'")
    raise AssertionError(f"no example value for {name}: {expression}")


def deployed_env() -> dict[str, str]:
    """The app settings as the deployed app sees them."""
    return {name: _value(name, expression) for name, expression in SETTINGS.items()}


# ---------------------------------------------------------------------- settings
def test_the_app_and_the_ops_tools_parse_the_deployed_settings_identity_based() -> None:
    env = deployed_env()
    ingest = IngestSettings.from_env(env)
    transform = TransformSettings.from_env(env)
    hub = HubSettings.from_env(env)
    for connection in (ingest.eventhub, hub.eventhub):
        assert connection.connection_string is None
        assert connection.fully_qualified_namespace == "evhns-example.servicebus.windows.net"
        assert connection.client_id == CLIENT_ID
    for storage in (ingest.dead_letters, transform.state, hub.host_storage):
        assert storage.connection_string is None
        assert storage.client_id == CLIENT_ID
        assert storage.blob_service_uri and storage.blob_service_uri.startswith("https://")
    assert transform.state.table_service_uri == _ENDPOINTS["table"]
    assert ingest.eventhub_name == hub.eventhub_name == "genesys-events"
    assert hub.consumer_group == "transform"
    assert env["AZURE_CLIENT_ID"] == CLIENT_ID
    assert env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        f"ClientId={CLIENT_ID};Authorization=AAD"
    )
    for prefix in ("AzureWebJobsStorage", "EventHubConnection", "StateStorage"):
        assert env[f"{prefix}__credential"] == "managedidentity"
        assert env[f"{prefix}__clientId"] == CLIENT_ID
    assert {"__blobServiceUri", "__queueServiceUri", "__tableServiceUri"} <= {
        name.removeprefix("AzureWebJobsStorage") for name in env
    }


def test_the_media_filter_is_a_parameter_that_keeps_every_media_type_by_default() -> None:
    assert SETTINGS["INGEST_MEDIA_TYPES"] == "ingestMediaTypes"
    assert MAIN_PARAMS["ingestMediaTypes"] == "''"
    assert TransformSettings.from_env(deployed_env()).media.keeps_all
    chosen = deploy("main.bicep", {**REQUIRED_ARGUMENTS, "ingestMediaTypes": "VOICE,chat"})
    functions = chosen.module("functionApp")
    assert functions is not None
    value = functions.resource("app__settings").properties["INGEST_MEDIA_TYPES"]
    assert value == "VOICE,chat"
    env = deployed_env() | {"INGEST_MEDIA_TYPES": value}
    assert TransformSettings.from_env(env).media.describe() == "chat,voice"


def test_no_setting_is_a_secret_or_a_keyed_connection_string() -> None:
    secretish = re.compile(
        r"AccountKey|SharedAccessKey|SharedAccessSignature|listKeys|listConnectionStrings|"
        r"primaryKey|password",
        re.IGNORECASE,
    )
    for name, expression in SETTINGS.items():
        assert not secretish.search(name + expression), f"{name} looks like a secret"
        if name != "APPLICATIONINSIGHTS_CONNECTION_STRING":
            assert "connectionstring" not in expression.lower(), name
    assert SETTINGS["APPLICATIONINSIGHTS_CONNECTION_STRING"] == (
        "appInsights.properties.ConnectionString"
    )
    for name in ("EventHubConnection", "StateStorage", "AzureWebJobsStorage", "WEBHOOK_SECRET"):
        assert name not in SETTINGS, f"{name} must not be set as a plain value"
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text(encoding="utf-8")
        assert not secretish.search(text), f"{path.name} reads or writes a key"
    # Secrets are Key Vault references, resolved by the app's identity (test_security.py).
    assert "WEBHOOK_SECRET: webhookSecretReference" in APP
    assert "RECORD_PII_KEY: recordPiiKeyReference" in APP
    for name in ("webhookSecret", "recordPiiKey"):
        assert re.search(rf"@secure\(\)\s*\n(@\w+\(.*\)\s*\n)*param {name} string", MAIN), name


def test_local_auth_is_off_everywhere() -> None:
    assert "allowSharedKeyAccess: false" in bicep.read("modules/storage.bicep")
    assert "disableLocalAuth: true" in bicep.read("modules/eventhubs.bicep")
    assert "DisableLocalAuth: true" in bicep.read("modules/monitoring.bicep")


# ---------------------------------------------------------------------- roles
ROLE_IDS = {
    "eventHubsDataSender": "2b629674-e913-4c01-ae53-ef4638d8f975",
    "eventHubsDataReceiver": "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}


def _assignments(principal: str) -> set[tuple[str, str]]:
    text = bicep.read("modules/roles.bicep")
    found: set[tuple[str, str]] = set()
    for resource in bicep.resources(text):
        if not resource.type.startswith("Microsoft.Authorization/roleAssignments"):
            continue
        role = re.search(r"roles\.(\w+)\)", resource.body)
        scope = resource.properties.get("scope")
        assert role and scope, f"{resource.symbol}: role and scope must be explicit"
        if f"principalId: {principal}" in resource.body:
            found.add((role[1], scope))
    return found


def test_the_identity_has_exactly_the_roles_it_needs() -> None:
    assert _assignments("identityPrincipalId") == {
        ("eventHubsDataSender", "hub"),
        ("eventHubsDataReceiver", "hub"),
        ("storageBlobDataOwner", "hostStorage"),
        ("storageTableDataContributor", "hostStorage"),
        ("storageQueueDataContributor", "hostStorage"),
        ("storageBlobDataContributor", "stateStorage"),
        ("storageTableDataContributor", "stateStorage"),
        ("monitoringMetricsPublisher", "appInsights"),
    }


def test_role_definition_ids_are_the_built_in_ones() -> None:
    table = bicep.entries(bicep.variable(bicep.read("modules/roles.bicep"), "roles"))
    assert {name: value.strip("'") for name, value in table.items()} == ROLE_IDS


def test_the_operator_can_run_the_ops_cli_and_nothing_more() -> None:
    assert _assignments("operatorPrincipalId") == {
        ("eventHubsDataReceiver", "hub"),
        ("eventHubsDataSender", "hub"),
        ("storageBlobDataContributor", "hostStorage"),
        ("storageBlobDataContributor", "stateStorage"),
        ("storageTableDataContributor", "stateStorage"),  # ops erase deletes state rows
    }


# ---------------------------------------------------------------------- resources
def test_flex_consumption_python_313_with_http_concurrency_and_identity_deployment() -> None:
    config = bicep.braced(APP, APP.index("functionAppConfig:"))
    assert re.search(r"name: 'python'\s+version: '3.13'", config)
    assert "perInstanceConcurrency: httpPerInstanceConcurrency" in config
    assert "instanceMemoryMB: instanceMemoryMB" in config
    assert "type: 'blobContainer'" in config
    assert "type: 'UserAssignedIdentity'" in config
    plan = next(r for r in bicep.resources(APP) if r.symbol == "plan")
    assert "tier: 'FlexConsumption', name: 'FC1'" in plan.body
    assert int(str(bicep.params(APP)["httpPerInstanceConcurrency"])) > 1
    assert "'azd-service-name': 'api'" in APP


def test_event_hubs_defaults_and_retention() -> None:
    assert MAIN_PARAMS["eventHubName"] == "'genesys-events'"
    assert MAIN_PARAMS["partitionCount"] == "8"
    hubs = bicep.read("modules/eventhubs.bicep")
    namespace = next(r for r in bicep.resources(hubs) if r.symbol == "namespace")
    assert "name: 'Standard'" in namespace.body
    assert "retentionTimeInHours: 168" in hubs
    assert any(r.type.endswith("/consumergroups") for r in bicep.resources(hubs))
    assert SETTINGS["EVENTHUB_CONSUMER_GROUP"] == "consumerGroupName"


def test_state_storage_is_separate_and_holds_what_the_code_uses() -> None:
    defaults = TransformSettings.from_env({"StateStorage": "UseDevelopmentStorage=true"})
    assert MAIN_PARAMS["stateTableName"] == f"'{defaults.state_table}'"
    assert MAIN_PARAMS["recordsContainer"] == f"'{defaults.records_container}'"
    assert MAIN_PARAMS["deadletterContainer"] == f"'{defaults.deadletter_container}'"
    assert f"var spillContainer = '{SPILL_CONTAINER}'" in MAIN
    assert "containers: [recordsContainer, deadletterContainer, spillContainer]" in MAIN
    assert "tables: [stateTableName]" in MAIN
    host, state = (DEFAULT_DEPLOYMENT.module(symbol) for symbol in ("hostStorage", "stateStorage"))
    assert host and str(host.resource("account").body["name"]).startswith("sthost")
    assert state and str(state.resource("account").body["name"]).startswith("stdata")


def test_alerts_watch_what_telemetry_emits() -> None:
    alerts = bicep.read("modules/alerts.bicep")
    assert f"metricName: '{telemetry.CONSUMER_LAG_TOTAL}'" in alerts
    assert "skipMetricValidation: true" in alerts
    assert MAIN_PARAMS["lagAlertThreshold"] == "10000"
    assert MAIN_PARAMS["errorRateAlertPercent"] == "'0.1'"
    assert "success == false or toint(resultCode) >= 500" in alerts
    assert "threshold: json(errorRatePercent)" in alerts


# ---------------------------------------------------------------------- azd
def test_azure_yaml_deploys_this_folder_as_a_python_function_app() -> None:
    document = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    services = document["services"]
    assert isinstance(services, dict)
    api = services["api"]
    assert api == {"project": ".", "language": "python", "host": "function"}
    infra = document["infra"]
    assert isinstance(infra, dict)
    assert (ROOT / str(infra["path"]) / f"{infra['module']}.bicep").exists()


def test_parameters_file_names_only_real_parameters() -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    for name in document["parameters"]:
        assert name in MAIN_PARAMS, f"main.parameters.json sets unknown parameter {name}"
    required = {name for name, default in MAIN_PARAMS.items() if default is None}
    # azd generates these once per environment (and keeps them) instead of asking.
    generated = set(re.findall(r"type: 'generate'.*\n(?:@.*\n)*param (\w+)", MAIN))
    assert generated == {"recordPiiKey"}
    assert required - generated <= set(document["parameters"])


# ---------------------------------------------------------------------- the package
def _ignored(path: Path, patterns: list[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(part, pattern) for part in path.parts for pattern in patterns)


def test_funcignore_keeps_tooling_tests_and_local_data_out() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for excluded in (
        "tests/conftest.py",
        "simulator/cli.py",
        "devstack/stack.py",
        "bench/common.py",
        "infra/main.bicep",
        "local.settings.json",
        ".venv/bin/python",
        ".venv-checkov/bin/checkov",
        "requirements-checkov.txt",
        "node_modules/azurite/package.json",
        ".devstack/state.json",
        "runs/x/report.json",
        "__azurite_db_blob__.json",
        ".azure/dev/.env",
        "requirements-dev.txt",
        "README.md",
        "ops/cli.py",
    ):
        assert _ignored(Path(excluded), patterns), f"{excluded} would be deployed"
    for kept in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        "functions/telemetry.py",
        "adapters/lag.py",
        "schemas/registry/record/v1.json",
        "adapters/table_state.py",
    ):
        assert not _ignored(Path(kept), patterns), f"{kept} would be left out"


# ---------------------------------------------------------------------- docs
_READS = re.compile(
    r"(?:_get|_number|_flag|_value|text_setting|number_setting|flag_setting|eventhub_connection"
    r"|storage_connection)\(\s*env,\s*\"(\w+)\""
    r"|(?:env|environ)\.get\(\"(\w+)\""
)


def settings_read_by_the_code() -> set[str]:
    """Every setting name the deployed packages read from the environment."""
    names: set[str] = set()
    for package in ("functions", "adapters", "ingest", "transform"):
        for path in (ROOT / package).rglob("*.py"):
            for match in _READS.finditer(path.read_text(encoding="utf-8")):
                names.add(match[1] or match[2])
    return names


def documented_settings(table: str) -> set[str]:
    """Names in the first column; `__suffix` entries take the row's first name as prefix."""
    names: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        tokens = re.findall(r"`([^`]+)`", row.split("|")[1])
        prefix = tokens[0].split("__")[0]
        names.update(prefix + token if token.startswith("__") else token for token in tokens)
    return names


def test_the_configuration_table_lists_every_setting() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    table = docs[docs.index("## Configuration") : docs.index("## Local development")]
    documented = documented_settings(table)
    read = settings_read_by_the_code()
    assert {"EVENTHUB_NAME", "StateStorage", "TIMER_SCHEDULE", "TELEMETRY_CONSOLE"} <= read
    missing = sorted(read - documented)
    assert not missing, f"settings read by the code but not in docs/deploy.md: {missing}"
    everything = deploy(
        "main.bicep", {**REQUIRED_ARGUMENTS, "webhookSecret": "s", "recordPii": "hash"}
    )
    functions = everything.module("functionApp")
    assert functions is not None
    deployed = set(functions.resource("app__settings").properties)
    assert {"WEBHOOK_SECRET", "RECORD_PII_KEY"} <= deployed
    undocumented = sorted(deployed - documented)
    assert not undocumented, f"app settings of the template missing from the table: {undocumented}"
