"""The Bicep templates, as deployed (tests/infra/deploy.py), and azure.yaml against the code.

Every connection the app opens is configured identity-based and parses with the app's own
settings code; no value is a key, a SAS or a connection string with a secret; the identity has
exactly the roles the code and the Functions runtime need; the alerts watch what telemetry emits.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import yaml

from adapters.entity import SPILL_CONTAINER
from adapters.settings import HubSettings, IngestSettings, TransformSettings
from functions import telemetry
from tests.infra.deploy import (
    INFRA,
    REQUIRED_ARGUMENTS,
    ROOT,
    Deployment,
    ResourceId,
    Symbol,
    Unknown,
    app_settings,
    deploy,
    one,
    parse,
    required_parameters,
)

DEFAULT_DEPLOYMENT = deploy("main.bicep", REQUIRED_ARGUMENTS)
MAIN_PARAMETERS = parse("main.bicep")["parameters"]
CLIENT_ID = "00000000-0000-0000-0000-0000000000c1"


def primary_endpoint(account: object, service: str) -> str:
    """What Azure reports as a storage account's `primaryEndpoints.<service>`."""
    return f"https://{account}.{service}.core.windows.net/"


def azure_fills_in(deployment: Deployment) -> dict[str, str]:
    """Values only Azure knows, by the expression that reads them, as it would fill them in."""
    host = one(deployment, "hostStorage").resource("account").body["name"]
    data = one(deployment, "stateStorage").resource("account").body["name"]
    return {
        "identity.outputs.clientId": CLIENT_ID,
        "stateStorage.outputs.blobEndpoint": primary_endpoint(data, "blob"),
        "stateStorage.outputs.tableEndpoint": primary_endpoint(data, "table"),
        # functionapp.bicep reads the host account (an `existing` resource) itself.
        **{
            f"hostStorage.properties.primaryEndpoints.{service}": primary_endpoint(host, service)
            for service in ("blob", "queue", "table")
        },
        "appInsights.properties.ConnectionString": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000"
        ),
    }


def _filled_in(value: object, deployment: Deployment, azure: dict[str, str]) -> object:
    """A module parameter with module outputs evaluated and what only Azure knows filled in."""
    if not isinstance(value, Unknown):
        return value
    module, _, output = value.expression.partition(".outputs.")
    if output and (called := deployment.module(module)) is not None:
        evaluated = called.output(output)
        if not isinstance(evaluated, Unknown):
            return evaluated
    return azure.get(value.expression, value)


def deployed_env(deployment: Deployment = DEFAULT_DEPLOYMENT) -> dict[str, str]:
    """The app settings as the deployed app sees them: functionapp.bicep deployed again with
    the parameters main.bicep passes it, module outputs and Azure's own values filled in."""
    azure = azure_fills_in(deployment)
    passed = one(deployment, "functionApp").params
    arguments = {name: _filled_in(value, deployment, azure) for name, value in passed.items()}
    settings = deploy("modules/functionapp.bicep", arguments).resource("app__settings")
    env = {
        name: azure.get(value.expression, value) if isinstance(value, Unknown) else value
        for name, value in settings.properties.items()
    }
    unknown = {name: value for name, value in env.items() if not isinstance(value, str)}
    assert not unknown, f"no example value for {unknown}"
    return env


# ---------------------------------------------------------------------- settings
def test_the_app_and_the_ops_tools_parse_the_deployed_settings_identity_based() -> None:
    env = deployed_env()
    ingest = IngestSettings.from_env(env)
    transform = TransformSettings.from_env(env)
    hub = HubSettings.from_env(env)
    namespace = one(DEFAULT_DEPLOYMENT, "eventHubs").resource("namespace").body["name"]
    for connection in (ingest.eventhub, hub.eventhub):
        assert connection.connection_string is None
        assert connection.fully_qualified_namespace == f"{namespace}.servicebus.windows.net"
        assert connection.client_id == CLIENT_ID
    for storage in (ingest.dead_letters, transform.state, hub.host_storage):
        assert storage.connection_string is None
        assert storage.client_id == CLIENT_ID
        assert storage.blob_service_uri and storage.blob_service_uri.startswith("https://")
    data = one(DEFAULT_DEPLOYMENT, "stateStorage").resource("account").body["name"]
    host = one(DEFAULT_DEPLOYMENT, "hostStorage").resource("account").body["name"]
    assert transform.state.table_service_uri == primary_endpoint(data, "table")
    assert transform.state.blob_service_uri == primary_endpoint(data, "blob")
    assert hub.host_storage.blob_service_uri == primary_endpoint(host, "blob")
    hub_name = one(DEFAULT_DEPLOYMENT, "eventHubs").resource("hub").body["name"]
    assert ingest.eventhub_name == hub.eventhub_name == hub_name == "genesys-events"
    assert hub.consumer_group == "transform"
    assert env["AZURE_CLIENT_ID"] == CLIENT_ID
    assert env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        f"ClientId={CLIENT_ID};Authorization=AAD"
    )
    for prefix in ("AzureWebJobsStorage", "EventHubConnection", "StateStorage"):
        assert env[f"{prefix}__credential"] == "managedidentity"
        assert env[f"{prefix}__clientId"] == CLIENT_ID
    # The Functions runtime reaches its own account's blob, queue and table services.
    for service in ("blob", "queue", "table"):
        assert env[f"AzureWebJobsStorage__{service}ServiceUri"] == primary_endpoint(host, service)


def test_the_media_filter_is_a_parameter_that_keeps_every_media_type_by_default() -> None:
    assert MAIN_PARAMETERS["ingestMediaTypes"]["default"] == ""
    assert app_settings(DEFAULT_DEPLOYMENT)["INGEST_MEDIA_TYPES"] == ""
    assert TransformSettings.from_env(deployed_env()).media.keeps_all
    chosen = deploy("main.bicep", {**REQUIRED_ARGUMENTS, "ingestMediaTypes": "VOICE,chat"})
    value = app_settings(chosen)["INGEST_MEDIA_TYPES"]
    assert value == "VOICE,chat"
    assert deployed_env(chosen)["INGEST_MEDIA_TYPES"] == value
    env = deployed_env() | {"INGEST_MEDIA_TYPES": value}
    assert TransformSettings.from_env(env).media.describe() == "chat,voice"


SECRETISH = re.compile(
    r"AccountKey|SharedAccessKey|SharedAccessSignature|listKeys|listConnectionStrings|"
    r"list_keys|list_connection_strings|primaryKey|password",
    re.IGNORECASE,
)


def test_no_setting_is_a_secret_or_a_keyed_connection_string() -> None:
    # With a webhook secret and pii=hash: every setting the template can make.
    everything = deploy(
        "main.bicep", {**REQUIRED_ARGUMENTS, "webhookSecret": "s", "recordPii": "hash"}
    )
    settings = app_settings(everything)
    for name, value in settings.items():
        # An Unknown's expression says where Azure's value comes from (listKeys(), a property).
        source = value.expression if isinstance(value, Unknown) else str(value)
        assert not SECRETISH.search(name + source), f"{name} looks like a secret"
        if name != "APPLICATIONINSIGHTS_CONNECTION_STRING":
            assert "connectionstring" not in source.lower(), name
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == Unknown(
        "appInsights.properties.ConnectionString"
    )
    for name in ("EventHubConnection", "StateStorage", "AzureWebJobsStorage"):
        assert name not in settings, f"{name} must not be set as a plain value"
    # Text on purpose: no template reads or writes a key anywhere, deployed or not, in any
    # branch or function the evaluator does not follow.
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text(encoding="utf-8")
        assert not SECRETISH.search(text), f"{path.name} reads or writes a key"
    # Secrets are Key Vault references, resolved by the app's identity (test_security.py).
    for name in ("WEBHOOK_SECRET", "RECORD_PII_KEY"):
        assert name not in app_settings(DEFAULT_DEPLOYMENT)
        assert str(settings[name]).startswith("@Microsoft.KeyVault(VaultName="), name
    for name in ("webhookSecret", "recordPiiKey"):
        decorators = MAIN_PARAMETERS[name]["decorators"]
        assert {"type": "secure"} in decorators, name


def test_local_auth_is_off_everywhere() -> None:
    for vnet in (True, False):
        deployment = deploy("main.bicep", {**REQUIRED_ARGUMENTS, "vnetEnabled": vnet})
        switches = {
            "Microsoft.Storage/storageAccounts": ("allowSharedKeyAccess", False),
            "Microsoft.EventHub/namespaces": ("disableLocalAuth", True),
            "Microsoft.Insights/components": ("DisableLocalAuth", True),
        }
        found = [r for _, r in deployment.walk() if r.type in switches]
        assert Counter(r.type for r in found) == {
            "Microsoft.Storage/storageAccounts": 2,  # host and data
            "Microsoft.EventHub/namespaces": 1,
            "Microsoft.Insights/components": 1,
        }
        for resource in found:
            switch, value = switches[resource.type]
            assert resource.properties[switch] is value, f"{resource.body['name']}: {switch}"


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
APP_IDENTITY = Unknown("identity.outputs.principalId")
OPERATOR = "00000000-0000-0000-0000-0000000000aa"
WITH_OPERATOR = deploy("main.bicep", {**REQUIRED_ARGUMENTS, "principalId": OPERATOR})


def _assignments(deployment: Deployment, principal: object) -> set[tuple[str, str]]:
    """(role, scope symbol) of every assignment the roles module makes to `principal`."""
    names = {role_id: name for name, role_id in ROLE_IDS.items()}
    found: set[tuple[str, str]] = set()
    for resource in one(deployment, "roles").resources:
        if resource.type != "Microsoft.Authorization/roleAssignments":
            continue
        role, scope = resource.properties["roleDefinitionId"], resource.body.get("scope")
        assert isinstance(role, ResourceId), f"{resource.symbol}: role must be explicit"
        assert role.type == "Microsoft.Authorization/roleDefinitions", resource.symbol
        assert isinstance(scope, Symbol), f"{resource.symbol}: scope must be explicit"
        if resource.properties["principalId"] == principal:
            found.add((names[str(role.names[0])], scope.name))
    return found


def test_the_identity_has_exactly_the_roles_it_needs() -> None:
    expected = {
        ("eventHubsDataSender", "hub"),
        ("eventHubsDataReceiver", "hub"),
        ("storageBlobDataOwner", "hostStorage"),
        ("storageTableDataContributor", "hostStorage"),
        ("storageQueueDataContributor", "hostStorage"),
        ("storageBlobDataContributor", "stateStorage"),
        ("storageTableDataContributor", "stateStorage"),
        ("monitoringMetricsPublisher", "appInsights"),
    }
    assert _assignments(WITH_OPERATOR, APP_IDENTITY) == expected
    assert _assignments(DEFAULT_DEPLOYMENT, APP_IDENTITY) == expected


def test_role_definition_ids_are_the_built_in_ones() -> None:
    assert one(DEFAULT_DEPLOYMENT, "roles").variable("roles") == ROLE_IDS


def test_the_operator_can_run_the_ops_cli_and_nothing_more() -> None:
    assert _assignments(WITH_OPERATOR, OPERATOR) == {
        ("eventHubsDataReceiver", "hub"),
        ("eventHubsDataSender", "hub"),
        ("storageBlobDataContributor", "hostStorage"),
        ("storageBlobDataContributor", "stateStorage"),
        ("storageTableDataContributor", "stateStorage"),  # ops erase deletes state rows
    }
    # Without an operator (principalId empty) the assignments are the identity's alone.
    roles = one(DEFAULT_DEPLOYMENT, "roles").resources
    assert {r.properties["principalId"] for r in roles} == {APP_IDENTITY}


# ---------------------------------------------------------------------- resources
def test_flex_consumption_python_313_with_http_concurrency_and_identity_deployment() -> None:
    functions = one(DEFAULT_DEPLOYMENT, "functionApp")
    app = functions.resource("app")
    config = app.properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.13"}
    scale = config["scaleAndConcurrency"]
    assert scale["triggers"]["http"]["perInstanceConcurrency"] > 1
    module_default = parse("modules/functionapp.bicep")["parameters"]["httpPerInstanceConcurrency"]
    assert module_default["default"] > 1
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": Unknown("identity.outputs.id"),
    }
    assert functions.resource("plan").body["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert app.body["tags"]["azd-service-name"] == "api"
    # Concurrency and memory are main.bicep's parameters, passed through to the app.
    tuned = deploy(
        "main.bicep",
        {**REQUIRED_ARGUMENTS, "httpPerInstanceConcurrency": 4, "instanceMemoryMB": 4096},
    )
    scale = one(tuned, "functionApp").resource("app").properties["functionAppConfig"]
    assert scale["scaleAndConcurrency"]["triggers"]["http"]["perInstanceConcurrency"] == 4
    assert scale["scaleAndConcurrency"]["instanceMemoryMB"] == 4096


def test_event_hubs_defaults_and_retention() -> None:
    hubs = one(DEFAULT_DEPLOYMENT, "eventHubs")
    assert hubs.resource("namespace").body["sku"]["name"] == "Standard"
    hub = hubs.resource("hub")
    assert hub.body["name"] == "genesys-events"
    assert hub.properties["partitionCount"] == 8
    assert hub.properties["retentionDescription"]["retentionTimeInHours"] == 168
    group = hubs.resource("consumerGroup")
    assert group.type == "Microsoft.EventHub/namespaces/eventhubs/consumergroups"
    assert group.body["parent"] == Symbol("hub")
    assert deployed_env()["EVENTHUB_CONSUMER_GROUP"] == group.body["name"] == "transform"
    other = deploy("main.bicep", {**REQUIRED_ARGUMENTS, "consumerGroupName": "other"})
    assert one(other, "eventHubs").resource("consumerGroup").body["name"] == "other"
    assert deployed_env(other)["EVENTHUB_CONSUMER_GROUP"] == "other"


def test_state_storage_is_separate_and_holds_what_the_code_uses() -> None:
    defaults = TransformSettings.from_env({"StateStorage": "UseDevelopmentStorage=true"})
    env = deployed_env()
    assert env["STATE_TABLE_NAME"] == defaults.state_table
    assert env["RECORDS_CONTAINER"] == defaults.records_container
    assert env["DEADLETTER_CONTAINER"] == defaults.deadletter_container
    host, state = (one(DEFAULT_DEPLOYMENT, symbol) for symbol in ("hostStorage", "stateStorage"))
    containers = [r.body["name"] for r in state.resources if r.symbol == "blobContainers"]
    tables = [r.body["name"] for r in state.resources if r.symbol == "storageTables"]
    expected = [defaults.records_container, defaults.deadletter_container, SPILL_CONTAINER]
    assert containers == expected
    assert tables == [defaults.state_table]
    assert str(host.resource("account").body["name"]).startswith("sthost")
    assert str(state.resource("account").body["name"]).startswith("stdata")
    assert host.resource("account").body["name"] != state.resource("account").body["name"]


def test_alerts_watch_what_telemetry_emits() -> None:
    alerts = one(DEFAULT_DEPLOYMENT, "alerts")
    (lag,) = alerts.resource("lagAlert").properties["criteria"]["allOf"]
    assert lag["metricName"] == telemetry.CONSUMER_LAG_TOTAL
    assert lag["skipMetricValidation"] is True
    assert lag["threshold"] == 10000
    (errors,) = alerts.resource("errorRateAlert").properties["criteria"]["allOf"]
    assert "countif(success == false or toint(resultCode) >= 500)" in errors["query"]
    assert errors["threshold"] == 0.1
    chosen = deploy(
        "main.bicep",
        {**REQUIRED_ARGUMENTS, "lagAlertThreshold": 500, "errorRateAlertPercent": "2.5"},
    )
    (lag,) = one(chosen, "alerts").resource("lagAlert").properties["criteria"]["allOf"]
    (errors,) = one(chosen, "alerts").resource("errorRateAlert").properties["criteria"]["allOf"]
    assert (lag["threshold"], errors["threshold"]) == (500, 2.5)


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


def test_the_tests_pass_exactly_the_parameters_main_bicep_requires() -> None:
    assert set(REQUIRED_ARGUMENTS) == required_parameters("main.bicep")


def test_parameters_file_names_only_real_parameters() -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    for name in document["parameters"]:
        assert name in MAIN_PARAMETERS, f"main.parameters.json sets unknown parameter {name}"
    required = required_parameters("main.bicep")
    # azd generates these once per environment (and keeps them) instead of asking.
    generated = {
        name
        for name, declared in MAIN_PARAMETERS.items()
        for decorator in declared["decorators"]
        if decorator["type"] == "metadata"
        and decorator["argument"].get("azd", {}).get("type") == "generate"
    }
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
