"""The security posture of the templates, as deployed (tests/infra/deploy.py evaluates them).

Every combination of private networking on and off, webhook secret or none, and RECORD_PII
mode: what is reachable from the internet, which private endpoints and DNS zones exist and
whether they cover everything the app connects to, how each resource is hardened, what logs
where, which secrets exist and who may read them, how long dead letters are kept.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from tests.infra.deploy import (
    INFRA,
    REQUIRED_ARGUMENTS,
    ROOT,
    Deployment,
    Resource,
    ResourceId,
    Symbol,
    Unknown,
    app_settings,
    deploy,
    one,
    parse,
)

DEPLOYED_AT = "2026-03-01T12:00:00Z"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"

SCENARIOS = [
    pytest.param(vnet, secret, pii, id=f"vnet={vnet}-secret={bool(secret)}-pii={pii}")
    for vnet in (True, False)
    for secret in ("", "a-webhook-secret")
    for pii in ("keep", "hash", "drop")
]


@cache
def deployed(vnet: bool, secret: str, pii: str, **more: object) -> Deployment:
    chosen = {"vnetEnabled": vnet, "webhookSecret": secret, "recordPii": pii}
    # The clock pinned: the webhook secret's expiry is counted from deployedAt.
    arguments = {**REQUIRED_ARGUMENTS, "deployedAt": DEPLOYED_AT, **chosen}
    return deploy("main.bicep", {**arguments, **more})


def of_type(deployment: Deployment, kind: str) -> list[Resource]:
    return [resource for _, resource in deployment.walk() if resource.type == kind]


# ---------------------------------------------------------------------- defaults
def test_private_networking_and_keep_are_the_defaults_and_azd_can_change_them() -> None:
    declared = parse("main.bicep")["parameters"]
    assert declared["vnetEnabled"]["default"] is True
    assert declared["recordPii"]["default"] == "keep"
    assert declared["deadletterRetentionDays"]["default"] == 30
    assert declared["dataStorageSku"]["default"] == "Standard_ZRS"
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    values = {name: entry["value"] for name, entry in mapped["parameters"].items()}
    assert values["vnetEnabled"] == "${VNET_ENABLED=true}"
    assert values["recordPii"] == "${RECORD_PII=keep}"
    assert values["deadletterRetentionDays"] == "${DEADLETTER_RETENTION_DAYS=30}"
    assert values["dataStorageSku"] == "${DATA_STORAGE_SKU=Standard_ZRS}"
    assert "recordPiiKey" not in values  # azd generates it (metadata type 'generate')
    default = deploy("main.bicep", REQUIRED_ARGUMENTS)
    assert default.module("network") is not None
    assert app_settings(default)["RECORD_PII"] == "keep"


# ---------------------------------------------------------------------- networks
_PRIVATE_SERVICES = (
    "Microsoft.Storage/storageAccounts",
    "Microsoft.EventHub/namespaces",
    "Microsoft.EventHub/namespaces/networkRuleSets",
    "Microsoft.KeyVault/vaults",
)


@pytest.mark.parametrize(("vnet", "secret", "pii"), SCENARIOS)
def test_private_networking_closes_every_public_data_endpoint(
    vnet: bool, secret: str, pii: str
) -> None:
    deployment = deployed(vnet, secret, pii)
    services = [r for kind in _PRIVATE_SERVICES for r in of_type(deployment, kind)]
    assert len(services) == 4 + (deployment.module("keyVault") is not None)
    for service in services:
        assert service.properties["publicNetworkAccess"] == ("Disabled" if vnet else "Enabled")
        if service.type == "Microsoft.EventHub/namespaces":
            continue  # its firewall is the networkRuleSets child
        network = service.properties.get("networkAcls", service.properties)
        assert network["defaultAction"] == ("Deny" if vnet else "Allow"), service.body["name"]
    # The webhook stays public: no inbound restriction, no private endpoint to the app.
    app = one(deployment, "functionApp").resource("app")
    assert "publicNetworkAccess" not in app.properties
    assert "ipSecurityRestrictions" not in app.properties["siteConfig"]
    targets = {
        link["properties"]["privateLinkServiceId"].type
        for endpoint in of_type(deployment, "Microsoft.Network/privateEndpoints")
        for link in endpoint.properties["privateLinkServiceConnections"]
    }
    assert "Microsoft.Web/sites" not in targets
    assert (deployment.module("network") is not None) == vnet
    assert app.properties["virtualNetworkSubnetId"] is None or vnet


def _expected_endpoints(deployment: Deployment) -> set[tuple[str, str]]:
    """(service name, group) for every service the app connects to, read from its settings."""
    settings = app_settings(deployment)
    host = one(deployment, "hostStorage").resource("account").body["name"]
    data = one(deployment, "stateStorage").resource("account").body["name"]
    namespace = one(deployment, "eventHubs").resource("namespace").body["name"]
    expected = {(namespace, "namespace")}
    for prefix, account in (("AzureWebJobsStorage", host), ("StateStorage", data)):
        for name in settings:
            service = re.fullmatch(rf"{prefix}__(blob|queue|table)ServiceUri", name)
            if service:
                expected.add((account, service[1]))
    vault = deployment.module("keyVault")
    if vault is not None:
        expected.add((vault.resource("vault").body["name"], "vault"))
    return expected


_ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "queue": "privatelink.queue.core.windows.net",
    "table": "privatelink.table.core.windows.net",
    "namespace": "privatelink.servicebus.windows.net",
    "vault": "privatelink.vaultcore.azure.net",
}


@pytest.mark.parametrize(("secret", "pii"), [("", "keep"), ("s", "keep"), ("", "hash")])
def test_every_service_the_app_reaches_has_a_private_endpoint_and_its_dns_zone(
    secret: str, pii: str
) -> None:
    deployment = deployed(True, secret, pii)
    network = one(deployment, "network")
    names = {r.body["name"]: r.type for _, r in deployment.walk()}
    found: set[tuple[str, str]] = set()
    for endpoint in network.resources:
        if endpoint.symbol != "endpoints":
            continue
        (link,) = endpoint.properties["privateLinkServiceConnections"]
        target = link["properties"]["privateLinkServiceId"]
        assert isinstance(target, ResourceId)
        (name,) = target.names
        assert names.get(name) == target.type, f"{endpoint.body['name']}: no {target}"
        (group,) = link["properties"]["groupIds"]
        found.add((str(name), group))
        subnet = endpoint.properties["subnet"]["id"]
        assert subnet == ResourceId(
            "Microsoft.Network/virtualNetworks/subnets",
            (network.params["name"], network.params["privateEndpointSubnetName"]),
        )
    assert found == _expected_endpoints(deployment)
    assert len(found) == 6 + (deployment.module("keyVault") is not None)
    # Each endpoint's A record goes to its group's zone, and every zone is linked to the VNet.
    records = [r for r in network.resources if r.symbol == "endpointRecords"]
    assert len(records) == len(found)
    for record in records:
        (config,) = record.properties["privateDnsZoneConfigs"]
        zone = config["properties"]["privateDnsZoneId"]
        assert zone == ResourceId("Microsoft.Network/privateDnsZones", (_ZONES[config["name"]],))
    zones = [r.body["name"] for r in network.resources if r.symbol == "zones"]
    assert sorted(zones) == sorted(_ZONES.values())
    links = [r for r in network.resources if r.symbol == "zoneLinks"]
    assert len(links) == len(zones)
    assert all(link.properties["registrationEnabled"] is False for link in links)


def test_the_app_sends_its_traffic_through_a_subnet_delegated_to_flex_consumption() -> None:
    deployment = deployed(True, "", "keep")
    network = one(deployment, "network")
    vnet = network.resource("vnet")
    subnets = {s["name"]: s["properties"] for s in vnet.properties["subnets"]}
    app_subnet = network.params["appSubnetName"]
    endpoints_subnet = network.params["privateEndpointSubnetName"]
    assert set(subnets) == {app_subnet, endpoints_subnet}
    (delegation,) = subnets[app_subnet]["delegations"]
    assert delegation["properties"]["serviceName"] == "Microsoft.App/environments"
    assert subnets[endpoints_subnet]["privateEndpointNetworkPolicies"] == "Disabled"
    for properties in subnets.values():
        assert properties["networkSecurityGroup"]["id"] == Unknown("nsg.id")
    space = ipaddress.IPv4Network(vnet.properties["addressSpace"]["addressPrefixes"][0])
    prefixes = [ipaddress.IPv4Network(p["addressPrefix"]) for p in subnets.values()]
    assert all(prefix.subnet_of(space) for prefix in prefixes)
    assert not prefixes[0].overlaps(prefixes[1])
    app = one(deployment, "functionApp").resource("app")
    assert app.properties["virtualNetworkSubnetId"] == ResourceId(
        "Microsoft.Network/virtualNetworks/subnets", (vnet.body["name"], app_subnet)
    )
    assert deployed(False, "", "keep").module("functionApp") is not None
    off = one(deployed(False, "", "keep"), "functionApp").resource("app")
    assert off.properties["virtualNetworkSubnetId"] is None


# ---------------------------------------------------------------------- hardening
def test_storage_is_reached_by_identity_over_tls_and_the_data_account_is_zone_redundant() -> None:
    deployment = deployed(True, "s", "hash")
    accounts = of_type(deployment, "Microsoft.Storage/storageAccounts")
    assert len(accounts) == 2
    for account in accounts:
        properties = account.properties
        assert properties["allowBlobPublicAccess"] is False
        assert properties["allowSharedKeyAccess"] is False
        assert properties["allowCrossTenantReplication"] is False
        assert properties["minimumTlsVersion"] == "TLS1_2"
        assert properties["supportsHttpsTrafficOnly"] is True
    for container in of_type(
        deployment, "Microsoft.Storage/storageAccounts/blobServices/containers"
    ):
        assert container.properties["publicAccess"] == "None"
    data = one(deployment, "stateStorage").resource("account")
    assert data.body["sku"]["name"] == "Standard_ZRS"
    lrs = deployed(True, "s", "hash", dataStorageSku="Standard_LRS")
    assert one(lrs, "stateStorage").resource("account").body["sku"]["name"] == "Standard_LRS"


def test_event_hubs_takes_entra_id_over_tls_12_and_trusts_no_service_by_default() -> None:
    eventhubs = one(deployed(True, "", "keep"), "eventHubs")
    namespace = eventhubs.resource("namespace").properties
    assert namespace["disableLocalAuth"] is True
    assert namespace["minimumTlsVersion"] == "1.2"
    rules = eventhubs.resource("networkRules").properties
    assert rules["trustedServiceAccessEnabled"] is False
    assert rules["ipRules"] == rules["virtualNetworkRules"] == []


def test_the_vault_keeps_deleted_secrets_and_nobody_can_purge_them() -> None:
    vault = one(deployed(True, "s", "keep"), "keyVault").resource("vault").properties
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["softDeleteRetentionInDays"] == 90
    assert vault["enabledForTemplateDeployment"] is False
    kept = one(deployed(True, "s", "keep", keyVaultRetentionDays=7), "keyVault")
    assert kept.resource("vault").properties["softDeleteRetentionInDays"] == 7


def test_the_function_app_takes_https_only_and_no_basic_auth_publishing() -> None:
    app = one(deployed(True, "", "keep"), "functionApp")
    site = app.resource("app").properties
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] == "1.2"
    assert site["siteConfig"]["scmMinTlsVersion"] == "1.2"
    assert site["siteConfig"]["ftpsState"] == "Disabled"
    policies = {
        r.body["name"]: r.properties["allow"]
        for r in app.resources
        if r.type == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    }
    assert policies == {"ftp": False, "scm": False}


# ---------------------------------------------------------------------- logs
# Resources with logs or metrics of their own, each with a diagnostic setting to the workspace.
LOGGED = {
    "Microsoft.Storage/storageAccounts",
    "Microsoft.Storage/storageAccounts/blobServices",
    "Microsoft.Storage/storageAccounts/tableServices",
    "Microsoft.Storage/storageAccounts/queueServices",
    "Microsoft.EventHub/namespaces",
    "Microsoft.KeyVault/vaults",
    "Microsoft.Web/sites",
    "Microsoft.OperationalInsights/workspaces",
    "Microsoft.Network/virtualNetworks",
    "Microsoft.Network/networkSecurityGroups",
}
# Resources without one, and why (docs/security.md says the same).
NOT_LOGGED = {
    "Microsoft.Resources/resourceGroups": "a container: the activity log records its changes",
    "Microsoft.ManagedIdentity/userAssignedIdentities": "no logs; its sign-ins are in Entra ID",
    "Microsoft.Insights/components": "workspace-based: its telemetry is in the workspace already",
    "Microsoft.Web/serverfarms": "the Flex plan has no logs; the app's setting covers it",
    "Microsoft.Web/sites/config": "part of the site",
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": "part of the site",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "covered by the blob service",
    "Microsoft.Storage/storageAccounts/tableServices/tables": "covered by the table service",
    "Microsoft.Storage/storageAccounts/managementPolicies": "part of the account",
    "Microsoft.EventHub/namespaces/eventhubs": "covered by the namespace",
    "Microsoft.EventHub/namespaces/eventhubs/consumergroups": "covered by the namespace",
    "Microsoft.EventHub/namespaces/networkRuleSets": "covered by the namespace",
    "Microsoft.KeyVault/vaults/secrets": "covered by the vault's audit log",
    "Microsoft.Network/privateEndpoints": "no logs; traffic shows in the services' logs",
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": "part of the endpoint",
    "Microsoft.Network/privateDnsZones": "no logs",
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks": "part of the zone",
    "Microsoft.Authorization/roleAssignments": "the activity log records them",
    "Microsoft.Insights/diagnosticSettings": "the settings themselves",
    "Microsoft.Insights/actionGroups": "the activity log records notifications",
    "Microsoft.Insights/metricAlerts": "alert history is in Azure Monitor",
    "Microsoft.Insights/scheduledQueryRules": "alert history is in Azure Monitor",
}


@pytest.mark.parametrize(("vnet", "secret", "pii"), SCENARIOS)
def test_every_resource_with_logs_sends_them_to_the_workspace(
    vnet: bool, secret: str, pii: str
) -> None:
    deployment = deployed(vnet, secret, pii, alertEmail="oncall@example.com")
    decided = LOGGED | set(NOT_LOGGED)
    for where, resource in deployment.walk():
        assert resource.type in decided, f"{resource.type}: logged or not, and why?"
        if resource.type not in LOGGED:
            continue
        settings = [
            r
            for r in where.resources
            if r.type == "Microsoft.Insights/diagnosticSettings"
            and r.body["scope"] == Symbol(resource.symbol)
        ]
        assert len(settings) == 1, f"{where.path}: {resource.symbol} has no diagnostic setting"
        (setting,) = settings
        assert setting.properties["workspaceId"] in (
            Unknown("monitoring.outputs.logAnalyticsId"),
            Unknown("workspace.id"),
        )
        assert setting.properties.get("logs") or setting.properties.get("metrics")


def _diagnostics(deployment: Deployment, scope: str) -> dict[str, object]:
    (setting,) = (
        r
        for r in deployment.resources
        if r.type == "Microsoft.Insights/diagnosticSettings" and r.body["scope"] == Symbol(scope)
    )
    return setting.properties


def test_the_vault_audit_log_and_storage_deletes_are_always_logged() -> None:
    deployment = deployed(True, "s", "hash")
    vault = _diagnostics(one(deployment, "keyVault"), "vault")
    assert {"categoryGroup": "audit", "enabled": True} in vault["logs"]  # type: ignore[operator]
    workspace = _diagnostics(one(deployment, "monitoring"), "workspace")
    assert {"categoryGroup": "audit", "enabled": True} in workspace["logs"]  # type: ignore[operator]
    for verbose, categories in (
        (False, ["StorageDelete"]),
        (True, ["StorageDelete", "StorageRead", "StorageWrite"]),
    ):
        data = one(deployed(True, "s", "hash", verboseStorageLogs=verbose), "stateStorage")
        for service in ("blobService", "tableService", "queueService"):
            logs = _diagnostics(data, service)["logs"]
            assert [entry["category"] for entry in logs] == categories  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- secrets
def _secrets(deployment: Deployment) -> dict[str, Deployment]:
    vault = deployment.module("keyVault")
    if vault is None:
        return {}
    return {
        symbol: found
        for symbol in ("webhookSecretValue", "recordPiiKeyValue")
        if (found := vault.module(symbol)) is not None
    }


@pytest.mark.parametrize(("vnet", "secret", "pii"), SCENARIOS)
def test_secrets_live_in_key_vault_and_only_the_app_reads_each_one(
    vnet: bool, secret: str, pii: str
) -> None:
    deployment = deployed(vnet, secret, pii)
    settings = app_settings(deployment)
    secrets = _secrets(deployment)
    assert set(secrets) == {
        symbol
        for symbol, wanted in (("webhookSecretValue", secret), ("recordPiiKeyValue", pii == "hash"))
        if wanted
    }
    assert (deployment.module("keyVault") is not None) == bool(secrets)
    assert settings["RECORD_PII"] == pii
    for symbol, setting, value in (
        ("webhookSecretValue", "WEBHOOK_SECRET", secret),
        ("recordPiiKeyValue", "RECORD_PII_KEY", REQUIRED_ARGUMENTS["recordPiiKey"]),
    ):
        if symbol not in secrets:
            assert setting not in settings
            continue
        module = secrets[symbol]
        stored = module.resource("secret")
        assert stored.properties["value"] == value
        assert stored.properties["contentType"].startswith("text/plain; HMAC-SHA256")
        vault_name = module.params["vaultName"]
        assert settings[setting] == (
            f"@Microsoft.KeyVault(VaultName={vault_name};SecretName={stored.body['name']})"
        )
        (reader,) = [r for r in module.resources if r.type.endswith("/roleAssignments")]
        assert reader.body["scope"] == Symbol("secret")  # the secret, not the vault
        assert reader.properties["roleDefinitionId"] == ResourceId(
            "Microsoft.Authorization/roleDefinitions", (KEY_VAULT_SECRETS_USER,)
        )
        assert reader.properties["principalId"] == Unknown("identity.outputs.principalId")
    # The app resolves the references as itself.
    site = one(deployment, "functionApp").resource("app").properties
    assert site["keyVaultReferenceIdentity"] == Unknown("identity.outputs.id")


def test_the_webhook_secret_is_due_for_rotation_and_the_pseudonymization_key_never() -> None:
    secrets = _secrets(deployed(True, "s", "hash"))
    webhook = secrets["webhookSecretValue"].resource("secret").properties
    due = datetime.fromisoformat(DEPLOYED_AT) + timedelta(days=365)
    assert webhook["attributes"] == {"exp": int(due.timestamp())}
    assert datetime.fromtimestamp(webhook["attributes"]["exp"], UTC).year == 2027
    key = secrets["recordPiiKeyValue"].resource("secret").properties
    assert key["attributes"] == {}


def test_the_pseudonymization_key_is_generated_by_azd_and_secure() -> None:
    declaration = parse("main.bicep")["parameters"]["recordPiiKey"]
    kinds = {
        decorator["type"]: decorator.get("argument") for decorator in declaration["decorators"]
    }
    assert "secure" in kinds
    assert kinds["metadata"] == {
        "azd": {"type": "generate", "config": {"length": 64, "noSpecial": True}}
    }
    assert declaration["default"] is None  # a default (newGuid()) would change at every deployment


# ---------------------------------------------------------------------- dead letters
@pytest.mark.parametrize("days", [30, 7])
def test_dead_letters_are_deleted_after_their_retention_and_nothing_else_is(days: int) -> None:
    deployment = deployed(True, "", "keep", deadletterRetentionDays=days)
    assert app_settings(deployment)["DEADLETTER_RETENTION_DAYS"] == str(days)
    data = one(deployment, "stateStorage")
    (rule,) = data.resource("lifecycle").properties["policy"]["rules"]
    container = deployment.params["deadletterContainer"]
    assert rule["enabled"] is True
    assert rule["definition"]["filters"] == {
        "blobTypes": ["blockBlob"],
        "prefixMatch": [f"{container}/"],
    }
    assert rule["definition"]["actions"] == {
        "baseBlob": {"delete": {"daysAfterCreationGreaterThan": days}}
    }
    host = one(deployment, "hostStorage")
    assert not [r for r in host.resources if r.symbol == "lifecycle"]


# ---------------------------------------------------------------------- roles, as documented
ROLE_NAMES = {
    "2b629674-e913-4c01-ae53-ef4638d8f975": "Azure Event Hubs Data Sender",
    "a638d3c7-ab3a-418d-83e6-5f17a39d4fde": "Azure Event Hubs Data Receiver",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "76199698-9eea-4c19-bc75-cec21354c6b6": "Storage Table Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    KEY_VAULT_SECRETS_USER: "Key Vault Secrets User",
}
OPERATOR = "00000000-0000-0000-0000-0000000000aa"


def _scope_label(where: Deployment, scope: object) -> str:
    if where.path == "modules/secret.bicep":
        return {"webhook-secret": "webhook secret", "record-pii-key": "pseudonymization key"}[
            str(where.params["name"])
        ]
    labels = {
        "hub": "the hub",
        "hostStorage": "host storage",
        "stateStorage": "data storage",
        "appInsights": "Application Insights",
    }
    assert isinstance(scope, Symbol), scope
    return labels[scope.name]


def test_docs_security_lists_every_role_assignment_the_templates_make() -> None:
    deployment = deployed(True, "s", "hash", principalId=OPERATOR)
    principals = {Unknown("identity.outputs.principalId"): "app identity", OPERATOR: "operator"}
    assigned = set()
    for where, resource in deployment.walk():
        if resource.type != "Microsoft.Authorization/roleAssignments":
            continue
        role = resource.properties["roleDefinitionId"]
        assert isinstance(role, ResourceId)
        assigned.add(
            (
                principals[resource.properties["principalId"]],
                ROLE_NAMES[str(role.names[0])],
                _scope_label(where, resource.body["scope"]),
            )
        )
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (app identity|operator) \| ([^|]+) \| ([^|]+) \|", text, re.MULTILINE)
    documented = {(who, role.strip(), scope.strip()) for who, role, scope in rows}
    assert documented == assigned
    nobody = deployed(True, "", "keep")  # no operator, no secrets: the app identity's 8 roles
    count = sum(r.type.endswith("/roleAssignments") for _, r in nobody.walk())
    assert count == 8
